# Cohort table: every subject/session with every input path; excluded subjects with the reason.


rule discover:
    input:
        get_discover_inputs,
    output:
        cohort=L.cohort(),
        excluded=L.cohort("excluded"),
    log:
        L.log("discover"),
    params:
        bids_dir=BIDS_DIR,
        inputs=config["inputs"],
    script:
        "../scripts/discover.py"
