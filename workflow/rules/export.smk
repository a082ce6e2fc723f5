# Per split: both models to ONNX (parity-checked against PyTorch) in one self-contained model folder;
# with postprocess.tune, its floors then chosen on the split's validation subjects.


rule export:
    input:
        cord=rules.train_cord.output.model,
        tumor=rules.train_tumor.output.model,
        validation=get_tune_inputs,
    output:
        cord=L.model_folder("{split}", name="cord.onnx"),
        tumor=L.model_folder("{split}", name="tumor.onnx"),
        meta=L.model_folder("{split}"),
    log:
        L.log("export/split-{split}"),
    threads: 2 if TUNE else 1
    resources:
        mem_mb=4000,
        runtime=export_runtime,
    params:
        training=TRAINING_RECIPE["tumor"],
        spacing=config["preprocess"]["spacing_mm"],
        postprocess=EXPORT_POSTPROCESS,
        inference=config["inference"],
        tune_subjects=get_tune_subjects,
    script:
        "../scripts/export.py"


# The single-step baseline's model folder: the same cord model, the whole-image tumor model.
rule export_single:
    input:
        cord=rules.train_cord.output.model,
        tumor=rules.train_single.output.model,
        validation=get_tune_inputs,
    output:
        cord=L.model_folder("{split}", True, "cord.onnx"),
        tumor=L.model_folder("{split}", True, "tumor.onnx"),
        meta=L.model_folder("{split}", True),
    log:
        L.log("export/split-{split}_single"),
    threads: 2 if TUNE else 1
    resources:
        mem_mb=4000,
        runtime=export_runtime,
    params:
        training=TRAINING_RECIPE["tumor"],
        spacing=config["preprocess"]["spacing_mm"],
        postprocess=EXPORT_POSTPROCESS,
        inference=config["inference"],
        tune_subjects=get_tune_subjects,
    script:
        "../scripts/export.py"
