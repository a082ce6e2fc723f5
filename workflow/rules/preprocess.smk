# Per batch of subjects (batching.preprocess), for each subject: the 30 mm cord mask (training
# target), T1w-to-T2w registration with QC gate, resampling to preprocess.spacing_mm (1x1x2 mm, files
# res-1x1x2) and the registration QC figure; then one registration table.

for batch, keys in PREPROCESS_BATCHES.items():

    rule:
        name:
            f"preprocess_{batch}"
        input:
            get_preprocess_inputs(keys),
        output:
            # first: Snakemake finds a job's producer by trying its outputs in order
            manifest=L.batch_manifest("preprocess", batch),
            # one folder per subject (registered T1w, transform, QC JSON, cord mask, working grid):
            # a declared file each made the paper DAG thousands of outputs, slow to plan
            subjects=[directory(L.preprocess_subject_dir(k)) for k in keys],
            figures=[
                report(
                    L.qc_figure("registration", k),
                    caption="../report/registration.rst",
                    category="Registration QC",
                    subcategory=k,
                )
                for k in keys
            ],
        log:
            [L.log(f"preprocess/sub-{k}") for k in keys],
        benchmark:
            L.benchmark(f"preprocess/{batch}")
        threads: 1
        resources:
            mem_mb=4000,
            runtime=10 + 2 * len(keys),
        params:
            subjects={
                k: {"inputs": preprocess_inputs(k), "outputs": preprocess_outputs(k)}
                for k in keys
            },
            registration=config["preprocess"]["registration"],
            spacing=config["preprocess"]["spacing_mm"],
            diameter_mm=config["preprocess"]["cord_mask_diameter_mm"],
        script:
            "../scripts/preprocess_batch.py"


rule registration_summary:
    input:
        batch_manifests("preprocess", SUBJECTS),
    output:
        tsv=L.registration_table(),
    log:
        L.log("qc/registration_summary"),
    params:
        qc=[L.registration_qc(s) for s in SUBJECTS],
    script:
        "../scripts/registration_summary.py"
