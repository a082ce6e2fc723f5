# The run's self-contained HTML report; its figures also go to `snakemake --report`.


rule report:
    input:
        unpack(get_report_inputs),
    output:
        html=L.report(),
        boxplot=report(
            L.report("figures/dice_boxplot.png"),
            caption="../report/dice_boxplot.rst",
            category="Evaluation",
        ),
        bland_altman=report(
            L.report("figures/volume_bland_altman.png"),
            caption="../report/bland_altman.rst",
            category="Evaluation",
        ),
    log:
        L.log("report"),
    params:
        subjects=get_report_subjects,
        grids=[preproc_paths(s)["grid"] for s in SUBJECTS],
        training_logs=training_logs(),
        predictions={s: L.prediction_dir(s, "cascade") for s in SPLITS},
        model_folders={s: L.model_folder(s) for s in SPLITS},
    script:
        "../scripts/report.py"
