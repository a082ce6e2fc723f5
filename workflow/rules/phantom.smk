# The embedded default cohort: synthetic IMSCT subjects, one job each.


rule phantom_dataset:
    output:
        participants=f"{RESOURCES}/synthetic/participants.tsv",
        description=f"{RESOURCES}/synthetic/dataset_description.json",
    log:
        f"{LOGS}/phantom/dataset.log",
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
        f"{LOGS}/phantom/sub-{{subject}}.log",
    benchmark:
        f"{BENCH}/phantom/sub-{{subject}}.tsv"
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
        png=f"{RESULTS}/qc/phantom/sub-{{subject}}_phantom-qc.png",
    log:
        f"{LOGS}/phantom/sub-{{subject}}_qc.log",
    script:
        "../scripts/phantom_qc.py"
