# `snakemake apply`: trained models on a new cohort (bids_dir) without labels. Each scan with a T2w
# is registered by training's register rule (an unreadable scan is recorded as skipped, not a failure),
# segmented with the ensemble of the `models` into BIDS derivatives, then measured (volumes.tsv,
# followup.tsv with growth plots) and shown (report.html). Outputs under <results>/apply/.


use rule register as apply_register with:
    input:
        unpack(get_apply_register_inputs),
    output:
        t1w=LA.registered_t1w("{subject}"),
        transform=LA.transform("{subject}"),
        qc=LA.registration_qc("{subject}"),
    log:
        L.log("apply/sub-{subject}_register"),
    benchmark:
        L.benchmark("apply/sub-{subject}_register")
    params:
        registration=config["preprocess"]["registration"],
        skip_unreadable=True,


rule apply_segment:
    input:
        unpack(get_apply_segment_inputs),
    output:
        anat=directory(L.apply_anat("{scan}")),
        record=L.apply_record("{scan}"),
    log:
        L.log("apply/{scan}_segment"),
    benchmark:
        L.benchmark("apply/{scan}_segment")
    wildcard_constraints:
        scan="|".join(map(re.escape, APPLY_SCANS)) or "NO_SCAN",
    threads: config["apply"]["threads"]
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        key=lambda wc: APPLY_SCANS[wc.scan],
        probabilities=config["apply"]["probabilities"],
        device=config["apply"]["device"],
    script:
        "../scripts/apply_segment.py"


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
        records=[L.apply_record(s) for s in APPLY_SCANS],
        masks=[L.apply_anat(s) for s in APPLY_SCANS],
        discs=[p for p in apply_discs().values() if p],
        sessions=apply_sessions(),
    output:
        volumes=L.apply("volumes.tsv"),
        followup=L.apply("followup.tsv"),
        growth=directory(L.apply("figures/growth")),
    log:
        L.log("apply/volumetry"),
    params:
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
        records=[L.apply_record(s) for s in APPLY_SCANS],
        masks=[L.apply_anat(s) for s in APPLY_SCANS],
        t2w=[apply_inputs(k)["t2w"] for k in APPLY_SCANS.values()],
        models=get_apply_models,
    output:
        L.apply("report.html"),
    log:
        L.log("apply/report"),
    params:
        threshold=config["apply"]["agreement_threshold"],
    script:
        "../scripts/apply_report.py"


rule apply:
    input:
        rules.apply_volumetry.output,
        rules.apply_report.output,
        rules.apply_description.output,
