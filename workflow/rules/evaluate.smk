# Evaluation (paper section 2.6): per split, the test subjects' predictions against the ground
# truth; then Table 4 over all splits, per tumor type, per acquisition, cascade vs single step.


rule evaluate:
    input:
        unpack(get_evaluate_inputs),
    output:
        tsv=L.split_metrics("{split}"),
    log:
        L.log("evaluate/split-{split}"),
    params:
        subjects=get_evaluate_subjects,
        pred_dirs=lambda wc: {
            m: L.prediction_dir(wc.split, m) for m in split_modes(wc.split)
        },
        overlap_mm3=config["evaluation"]["overlap_mm3"],
    script:
        "../scripts/evaluate.py"


rule aggregate:
    input:
        tsv=[L.split_metrics(s) for s in SPLITS],
        train_logs=[
            L.model(s, m, "log.tsv")
            for s in SINGLE_SPLITS
            for m in ("tumor", "single")
        ],
    output:
        metrics=L.evaluation("metrics.tsv"),
        table4=L.evaluation("table4.tsv"),
        markdown=L.evaluation("summary.md"),
        per_type=L.evaluation("per_type.tsv"),
        per_acquisition=L.evaluation("per_acquisition.tsv"),
        cascade=L.evaluation("cascade_vs_single.tsv"),
        summary=L.evaluation("summary.json"),
        postprocess=L.evaluation("class_rules.tsv"),
    log:
        L.log("evaluate/aggregate"),
    script:
        "../scripts/aggregate.py"
