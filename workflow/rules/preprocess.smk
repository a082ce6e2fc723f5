# Per subject: cord mask (training target), T1w-to-T2w registration with QC gate, resampling to
# preprocess.spacing_mm (1x1x2 mm, files res-1x1x2), registration QC figure; one registration table.


rule cord_mask:
    input:
        centerline=lambda wc: subject_inputs(wc.subject)["centerline"],
    output:
        mask=f"{RESULTS}/preprocess/sub-{{subject}}/sub-{{subject}}_label-cord_mask.nii.gz",
    log:
        f"{LOGS}/preprocess/sub-{{subject}}_cord-mask.log",
    params:
        diameter_mm=config["preprocess"]["cord_mask_diameter_mm"],
    script:
        "../scripts/cord_mask.py"


rule register:
    input:
        unpack(get_register_inputs),
    output:
        t1w=f"{RESULTS}/preprocess/sub-{{subject}}/sub-{{subject}}_space-T2w_desc-registered_T1w.nii.gz",
        transform=f"{RESULTS}/preprocess/sub-{{subject}}/sub-{{subject}}_from-T1w_to-T2w_mode-points_xfm.mat",
        qc=f"{RESULTS}/preprocess/sub-{{subject}}/sub-{{subject}}_desc-registration_qc.json",
    log:
        f"{LOGS}/preprocess/sub-{{subject}}_register.log",
    benchmark:
        f"{BENCH}/preprocess/sub-{{subject}}_register.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        registration=config["preprocess"]["registration"],
    script:
        "../scripts/register.py"


rule resample:
    input:
        unpack(get_resample_inputs),
    output:
        **preproc_paths("{subject}"),
    log:
        f"{LOGS}/preprocess/sub-{{subject}}_resample.log",
    benchmark:
        f"{BENCH}/preprocess/sub-{{subject}}_resample.tsv"
    resources:
        mem_mb=4000,
    params:
        spacing=config["preprocess"]["spacing_mm"],
    script:
        "../scripts/resample.py"


rule registration_figure:
    input:
        t2w=lambda wc: subject_inputs(wc.subject)["t2w"],
        t1w=rules.register.output.t1w,
        qc=rules.register.output.qc,
        cord=rules.cord_mask.output.mask,
    output:
        png=report(
            f"{RESULTS}/qc/registration/sub-{{subject}}_registration.png",
            caption="../report/registration.rst",
            category="Registration QC",
            subcategory="{subject}",
        ),
    log:
        f"{LOGS}/qc/sub-{{subject}}_registration.log",
    script:
        "../scripts/registration_figure.py"


rule registration_summary:
    input:
        expand(
            f"{RESULTS}/preprocess/sub-{{subject}}/sub-{{subject}}_desc-registration_qc.json",
            subject=SUBJECTS,
        ),
    output:
        tsv=f"{RESULTS}/qc/registration.tsv",
    log:
        f"{LOGS}/qc/registration_summary.log",
    script:
        "../scripts/registration_summary.py"
