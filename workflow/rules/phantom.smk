# The embedded default cohort: synthetic IMSCT subjects, generated in batches (batching.phantom).


rule phantom_dataset:
    output:
        participants=f"{RESOURCES}/synthetic/participants.tsv",
        description=f"{RESOURCES}/synthetic/dataset_description.json",
    log:
        L.log("phantom/dataset"),
    params:
        synthetic=PHANTOM_PARAMS,
        inputs=config["inputs"],
    script:
        "../scripts/phantom_dataset.py"


# One job per batch of subjects; each subject's files, QC montage and log are its own.
for batch, keys in PHANTOM_BATCHES.items():

    rule:
        name:
            f"phantom_{batch}"
        output:
            # first: Snakemake finds a job's producer by trying its outputs in order
            manifest=L.batch_manifest("phantom", batch),
            subjects=[directory(d) for k in keys for d in phantom_folders(k)],
            qc=[L.qc_figure("phantom", k) for k in keys if PHANTOM_QC],
        log:
            [L.log(f"phantom/sub-{k}") for k in keys],
        benchmark:
            L.benchmark(f"phantom/{batch}")
        threads: 1
        resources:
            mem_mb=2000,
            runtime=5 + 2 * len(keys),
        params:
            batch=keys,
            qc={k: L.qc_figure("phantom", k) for k in keys if PHANTOM_QC},
            synthetic=PHANTOM_PARAMS,
            inputs=config["inputs"],
        script:
            "../scripts/phantom_batch.py"
