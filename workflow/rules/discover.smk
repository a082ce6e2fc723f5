# Cohort table: every subject/session with every input path; excluded subjects with the reason.


rule discover:
    input:
        get_discover_inputs,
    output:
        cohort=f"{RESULTS}/cohort/cohort.tsv",
        excluded=f"{RESULTS}/cohort/excluded.tsv",
    log:
        f"{LOGS}/discover.log",
    params:
        bids_dir=BIDS_DIR,
        inputs=config["inputs"],
    script:
        "../scripts/discover.py"
