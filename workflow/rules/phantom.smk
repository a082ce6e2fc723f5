# The embedded default cohort: synthetic IMSCT subjects, one job each.


rule phantom_dataset:
    output:
        participants=f"{RESOURCES}/synthetic/participants.tsv",
        description=f"{RESOURCES}/synthetic/dataset_description.json",
    log:
        L.log("phantom/dataset"),
    params:
        subjects=config["synthetic"]["subjects"],
        seed=config["synthetic"]["seed"],
        size=config["synthetic"]["size"],
        inputs=config["inputs"],
    script:
        "../scripts/phantom_dataset.py"


rule phantom_subject:
    output:
        **phantom_paths("{subject}"),
    log:
        L.log("phantom/sub-{subject}"),
    benchmark:
        L.benchmark("phantom/sub-{subject}")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        subjects=config["synthetic"]["subjects"],
        seed=config["synthetic"]["seed"],
        size=config["synthetic"]["size"],
        inputs=config["inputs"],
        participant="sub-{subject}",
    script:
        "../scripts/phantom_subject.py"


rule phantom_qc:
    input:
        unpack(lambda wc: phantom_paths(wc.subject)),
    output:
        png=L.qc_figure("phantom", "{subject}"),
    log:
        L.log("phantom/sub-{subject}_qc"),
    script:
        "../scripts/phantom_qc.py"
