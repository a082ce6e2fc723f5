# `snakemake apply`: trained models on a new cohort (bids_dir) without labels. In batches of scans
# (batching.infer), each scan with a T2w is registered where it has a T1w (training's registration;
# the synthetic cohort's, made by preprocessing, is reused; an unreadable scan is recorded as
# skipped, not a failure) and segmented with the ensemble of the `models` (on the T2w alone where
# there is no T1w) into BIDS derivatives; then measured (volumes.tsv, followup.tsv with growth plots)
# and shown (report.html). Outputs under <results>/apply/.

for batch, scans in APPLY_BATCHES.items():

    rule:
        name:
            f"apply_{batch}"
        input:
            unpack(lambda wc, scans=scans: apply_batch_inputs(scans)),
        output:
            # first: Snakemake finds a job's producer by trying its outputs in order
            manifest=L.batch_manifest("apply", batch),
            # the masks' folders are not declared: a skipped scan leaves none (not an empty one)
            records=[L.apply_record(s) for s in scans],
        log:
            [L.log(f"apply/sub-{APPLY_SCANS[s]}") for s in scans],
        benchmark:
            L.benchmark(f"apply/{batch}")
        threads: config["apply"]["threads"]
        resources:
            mem_mb=4000,
            runtime=10 + 2 * len(scans),
        params:
            scans={s: apply_scan(s) for s in scans},
            registration=config["preprocess"]["registration"],
            probabilities=config["apply"]["probabilities"],
            device=config["apply"]["device"],
        script:
            "../scripts/apply_batch.py"


rule apply_description:
    input:
        models=get_apply_models,
    output:
        L.apply_derivatives("dataset_description.json"),
    log:
        L.log("apply/description"),
    script:
        "../scripts/apply_description.py"


rule apply_volumetry:
    input:
        batches=[L.batch_manifest("apply", b) for b in APPLY_BATCHES],
        discs=apply_disc_inputs(),
        sessions=apply_sessions(),
    output:
        volumes=L.apply("volumes.tsv"),
        followup=L.apply("followup.tsv"),
        growth=directory(L.apply("figures/growth")),
    log:
        L.log("apply/volumetry"),
    params:
        records=[L.apply_record(s) for s in APPLY_SCANS],
        discs=apply_discs(),
        threshold=config["apply"]["agreement_threshold"],
        participants=apply_followup_participants(),
    script:
        "../scripts/apply_volumetry.py"


rule apply_report:
    input:
        volumes=rules.apply_volumetry.output.volumes,
        followup=rules.apply_volumetry.output.followup,
        growth=rules.apply_volumetry.output.growth,
        batches=[L.batch_manifest("apply", b) for b in APPLY_BATCHES],
        models=get_apply_models,
    output:
        L.apply("report.html"),
    log:
        L.log("apply/report"),
    params:
        records=[L.apply_record(s) for s in APPLY_SCANS],
        threshold=config["apply"]["agreement_threshold"],
    script:
        "../scripts/apply_report.py"


rule apply:
    input:
        rules.apply_volumetry.output,
        rules.apply_report.output,
        rules.apply_description.output,
