# Per split: both models to ONNX (parity-checked against PyTorch) in one self-contained model folder.


rule export:
    input:
        cord=rules.train_cord.output.model,
        tumor=rules.train_tumor.output.model,
    output:
        cord=L.model_folder("{split}", name="cord.onnx"),
        tumor=L.model_folder("{split}", name="tumor.onnx"),
        meta=L.model_folder("{split}"),
    log:
        L.log("export/split-{split}"),
    params:
        training=TRAINING_RECIPE["tumor"],
        spacing=config["preprocess"]["spacing_mm"],
        postprocess=config["postprocess"],
        inference=config["inference"],
    script:
        "../scripts/export.py"


# The single-step baseline's model folder: the same cord model, the whole-image tumor model.
rule export_single:
    input:
        cord=rules.train_cord.output.model,
        tumor=rules.train_single.output.model,
    output:
        cord=L.model_folder("{split}", True, "cord.onnx"),
        tumor=L.model_folder("{split}", True, "tumor.onnx"),
        meta=L.model_folder("{split}", True),
    log:
        L.log("export/split-{split}_single"),
    params:
        training=TRAINING_RECIPE["tumor"],
        spacing=config["preprocess"]["spacing_mm"],
        postprocess=config["postprocess"],
        inference=config["inference"],
    script:
        "../scripts/export.py"
