# Each split's models on that split's test subjects: the cascade, and the single-step baseline where
# it was trained (paper section 3.3). The T1w comes already registered from preprocessing, so
# inference does not register it again. Each job writes the configured class rule's masks and,
# in <mode>-<ALT_RULE>/, the other rule's.


rule infer:
    input:
        t2w=lambda wc: subject_inputs(wc.subject)["t2w"],
        t1w=rules.register.output.t1w,
        model=get_infer_model,
    output:
        masks=[L.prediction("{split}", "{mode}", "{subject}", c) for c in OUTPUTS],
        alt=[
            L.prediction("{split}", f"{{mode}}-{ALT_RULE}", "{subject}", c)
            for c in CLASSES
        ],
        # JSON sidecars (provenance, crop, seconds): evaluation reads them
        sidecars=[
            L.prediction("{split}", "{mode}", "{subject}", c, ".json") for c in OUTPUTS
        ],
        alt_sidecars=[
            L.prediction("{split}", f"{{mode}}-{ALT_RULE}", "{subject}", c, ".json")
            for c in CLASSES
        ],
    log:
        L.log("infer/split-{split}_{mode}_sub-{subject}"),
    benchmark:
        L.benchmark("infer/split-{split}_{mode}_sub-{subject}")
    wildcard_constraints:
        mode="cascade|single",
    threads: 2
    params:
        cascade=lambda wc: wc.mode == "cascade",
    script:
        "../scripts/infer.py"
