# Per subject: cord mask (training target), T1w-to-T2w registration with QC gate, resampling to
# preprocess.spacing_mm (1x1x2 mm, files res-1x1x2), registration QC figure; one registration table.


rule cord_mask:
    input:
        centerline=lambda wc: subject_inputs(wc.subject)["centerline"],
    output:
        mask=L.cord_mask("{subject}"),
    log:
        L.log("preprocess/sub-{subject}_cord-mask"),
    params:
        diameter_mm=config["preprocess"]["cord_mask_diameter_mm"],
    script:
        "../scripts/cord_mask.py"


rule register:
    input:
        unpack(get_register_inputs),
    output:
        t1w=L.registered_t1w("{subject}"),
        transform=L.transform("{subject}"),
        qc=L.registration_qc("{subject}"),
    log:
        L.log("preprocess/sub-{subject}_register"),
    benchmark:
        L.benchmark("preprocess/sub-{subject}_register")
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
        L.log("preprocess/sub-{subject}_resample"),
    benchmark:
        L.benchmark("preprocess/sub-{subject}_resample")
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
            L.qc_figure("registration", "{subject}"),
            caption="../report/registration.rst",
            category="Registration QC",
            subcategory="{subject}",
        ),
    log:
        L.log("qc/sub-{subject}_registration"),
    script:
        "../scripts/registration_figure.py"


rule registration_summary:
    input:
        [L.registration_qc(s) for s in SUBJECTS],
    output:
        tsv=L.registration_table(),
    log:
        L.log("qc/registration_summary"),
    script:
        "../scripts/registration_summary.py"
