# Evaluation (paper section 2.6): per split, the test subjects' predictions against the ground
# truth; then Table 4 over all splits, per tumor type, cascade vs single step.


rule evaluate:
    input:
        unpack(get_evaluate_inputs),
    output:
        tsv=f"{RESULTS}/evaluation/split-{{split}}.tsv",
    log:
        f"{LOGS}/evaluate/split-{{split}}.log",
    params:
        subjects=get_evaluate_subjects,
        pred_root=f"{RESULTS}/predictions/split-{{split}}",
        modes=lambda wc: split_modes(wc.split),
        overlap_mm3=config["evaluation"]["overlap_mm3"],
    script:
        "../scripts/evaluate.py"


rule aggregate:
    input:
        tsv=expand(f"{RESULTS}/evaluation/split-{{split}}.tsv", split=SPLITS),
        train_logs=expand(
            f"{RESULTS}/models/split-{{split}}/{{m}}/log.tsv",
            split=SINGLE_SPLITS,
            m=["tumor", "single"],
        ),
    output:
        metrics=f"{RESULTS}/evaluation/metrics.tsv",
        table4=f"{RESULTS}/evaluation/table4.tsv",
        markdown=f"{RESULTS}/evaluation/summary.md",
        per_type=f"{RESULTS}/evaluation/per_type.tsv",
        cascade=f"{RESULTS}/evaluation/cascade_vs_single.tsv",
        summary=f"{RESULTS}/evaluation/summary.json",
        postprocess=f"{RESULTS}/evaluation/class_rules.tsv",
    log:
        f"{LOGS}/evaluate/aggregate.log",
    script:
        "../scripts/aggregate.py"
