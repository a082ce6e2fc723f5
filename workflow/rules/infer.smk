# Each split's models on that split's test subjects: the cascade, and the single-step baseline where
# it was trained (paper section 3.3), in batches of batching.infer subjects (one job, the models
# loaded once). The T1w comes already registered from preprocessing, so inference does not register
# it again. Each subject gets the configured class rule's masks in <mode>/sub-<key>/ and the other
# rule's in <mode>-<ALT_RULE>/sub-<key>/, each mask with its JSON sidecar (evaluation reads them).

for split in SPLITS:
    for mode in base_modes(split):
        for batch, keys in infer_batches(split).items():

            rule:
                name:
                    f"infer_{split}_{mode}_{batch}"
                input:
                    # the T2w (phantom manifests or source files) and registered T1w of each subject
                    scans=get_infer_inputs(keys),
                    model=L.model_folder(split, single=mode != "cascade"),
                output:
                    # first: Snakemake finds a producer by trying its outputs in order
                    manifest=L.batch_manifest(f"infer/split-{split}_{mode}", batch),
                    # one folder per subject and class rule (masks and JSON sidecars): a
                    # declared file each made the paper DAG 16,000 outputs, slow to plan
                    masks=[
                        directory(L.prediction_subject_dir(split, m, k))
                        for k in keys
                        for m in (mode, f"{mode}-{ALT_RULE}")
                    ],
                log:
                    [L.log(f"infer/split-{split}_{mode}_sub-{k}") for k in keys],
                benchmark:
                    L.benchmark(f"infer/split-{split}_{mode}_{batch}")
                threads: 2
                resources:
                    mem_mb=4000,
                    runtime=10 + len(keys),
                params:
                    cascade=mode == "cascade",
                    subjects={
                        k: {
                            "t2w": subject_inputs(k)["t2w"],
                            "t1w": L.registered_t1w(k),
                            "out": L.prediction_subject_dir(split, mode, k),
                            "alt": L.prediction_subject_dir(
                                split, f"{mode}-{ALT_RULE}", k
                            ),
                        }
                        for k in keys
                    },
                script:
                    "../scripts/infer.py"
