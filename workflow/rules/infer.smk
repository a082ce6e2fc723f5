# Each split's models on that split's test subjects: the cascade, and the single-step baseline where
# it was trained (paper section 3.3). The T1w comes already registered from preprocessing, so
# inference does not register it again. Each job writes the configured class rule's masks and,
# in <mode>-<ALT_RULE>/, the other rule's.


rule infer:
    input:
        t2w=lambda wc: subject_inputs(wc.subject)["t2w"],
        t1w=f"{RESULTS}/preprocess/sub-{{subject}}/sub-{{subject}}_space-T2w_desc-registered_T1w.nii.gz",
        model=get_infer_model,
    output:
        masks=expand(
            f"{RESULTS}/predictions/split-{{{{split}}}}/{{{{mode}}}}/sub-{{{{subject}}}}_label-{{cls}}_mask.nii.gz",
            cls=OUTPUTS,
        ),
        alt=expand(
            f"{RESULTS}/predictions/split-{{{{split}}}}/{{{{mode}}}}-{ALT_RULE}/sub-{{{{subject}}}}_label-{{cls}}_mask.nii.gz",
            cls=CLASSES,
        ),
        # JSON sidecars (provenance, crop, seconds): evaluation reads them
        sidecars=expand(
            f"{RESULTS}/predictions/split-{{{{split}}}}/{{{{mode}}}}/sub-{{{{subject}}}}_label-{{cls}}_mask.json",
            cls=OUTPUTS,
        ),
        alt_sidecars=expand(
            f"{RESULTS}/predictions/split-{{{{split}}}}/{{{{mode}}}}-{ALT_RULE}/sub-{{{{subject}}}}_label-{{cls}}_mask.json",
            cls=CLASSES,
        ),
    log:
        f"{LOGS}/infer/split-{{split}}_{{mode}}_sub-{{subject}}.log",
    benchmark:
        f"{BENCH}/infer/split-{{split}}_{{mode}}_sub-{{subject}}.tsv"
    wildcard_constraints:
        mode="cascade|single",
    threads: 2
    params:
        cascade=lambda wc: wc.mode == "cascade",
    script:
        "../scripts/infer.py"
