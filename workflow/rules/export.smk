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
    params:
        training=TRAINING_RECIPE,
        spacing=config["preprocess"]["spacing_mm"],
        postprocess=config["postprocess"],
    script:
        "../scripts/export.py"


# The single-step baseline's model folder: the same cord model, the whole-image tumor model.
rule export_single:
    input:
        cord=rules.train_cord.output.model,
        tumor=rules.train_single.output.model,
    output:
        cord=f"{RESULTS}/models/split-{{split}}/onnx-single/cord.onnx",
        tumor=f"{RESULTS}/models/split-{{split}}/onnx-single/tumor.onnx",
        meta=f"{RESULTS}/models/split-{{split}}/onnx-single/model.json",
    log:
        f"{LOGS}/export/split-{{split}}_single.log",
    params:
        training=TRAINING_RECIPE,
        spacing=config["preprocess"]["spacing_mm"],
        postprocess=config["postprocess"],
    script:
        "../scripts/export.py"
