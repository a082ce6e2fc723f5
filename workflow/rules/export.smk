# Per split: both models to ONNX (parity-checked against PyTorch) in one self-contained model folder.


rule export:
    input:
        cord=rules.train_cord.output.model,
        tumor=rules.train_tumor.output.model,
    output:
        cord=f"{RESULTS}/models/split-{{split}}/onnx/cord.onnx",
        tumor=f"{RESULTS}/models/split-{{split}}/onnx/tumor.onnx",
        meta=f"{RESULTS}/models/split-{{split}}/onnx/model.json",
    log:
        f"{LOGS}/export/split-{{split}}.log",
    conda:
        "../../environment.yml"
    params:
        training=config["training"],
        spacing=config["preprocess"]["spacing_mm"],
    script:
        "../scripts/export.py"
