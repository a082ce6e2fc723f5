# Cohort table: every subject/session with every input path; excluded subjects with the reason.


rule discover:
    input:
        get_discover_inputs,
    output:
        cohort=f"{RESULTS}/cohort/cohort.tsv",
        excluded=f"{RESULTS}/cohort/excluded.tsv",
    params:
        bids_dir=BIDS_DIR,
        inputs=config["inputs"],
    log:
        f"{LOGS}/discover.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/discover.py"
