# The run's self-contained HTML report; its figures also go to `snakemake --report`.


rule report:
    input:
        unpack(get_report_inputs),
    output:
        html=f"{RESULTS}/report/index.html",
        boxplot=report(
            f"{RESULTS}/report/figures/dice_boxplot.png",
            caption="../report/dice_boxplot.rst",
            category="Evaluation",
        ),
        bland_altman=report(
            f"{RESULTS}/report/figures/volume_bland_altman.png",
            caption="../report/bland_altman.rst",
            category="Evaluation",
        ),
    log:
        f"{LOGS}/report.log",
    params:
        subjects=get_report_subjects,
        training_logs={
            s: {
                m: f"{RESULTS}/models/split-{s}/{m}/log.tsv"
                for m in ("cord", "tumor", "single")
                if m != "single" or s in SINGLE_SPLITS
            }
            for s in SPLITS
        },
        predictions=f"{RESULTS}/predictions",
    script:
        "../scripts/report.py"
