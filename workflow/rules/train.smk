# Random splits, then per split: the cord localisation model and the tumor model (on cord crops).


rule splits:
    input:
        cohort=L.cohort(),
    output:
        splits=[L.split_table(s) for s in SPLITS],
        summary=L.splits_summary(),
    log:
        L.log("splits"),
    params:
        n=config["splits"]["n"],
        seed=config["splits"]["seed"],
        fractions=config["splits"]["fractions"],
    script:
        "../scripts/splits.py"


rule train_cord:
    input:
        split=L.split_table("{split}"),
        images=get_training_inputs,
    output:
        model=L.model("{split}", "cord", "best.pt"),
        summary=L.model("{split}", "cord", "summary.json"),
        log_tsv=L.model("{split}", "cord", "log.tsv"),
        curve=report(
            L.model("{split}", "cord", "loss.png"),
            caption="../report/training.rst",
            category="Training",
            subcategory="split {split}",
        ),
    log:
        L.log("train/split-{split}_cord"),
    benchmark:
        L.benchmark("train/split-{split}_cord")
    # where cores are few, the short cord jobs first (each unlocks a tumor job), the single-step
    # baseline last (nothing waits on it but the comparison): training lanes end together
    priority: 2
    threads: config["training"]["threads"]
    resources:
        gpu=config["training"]["resources"]["gpu"],
        mem_mb=config["training"]["resources"]["mem_mb"],
        runtime=config["training"]["resources"]["runtime"],
    params:
        subjects=get_training_subjects,
        recipe=TRAINING_RECIPE["cord"],
        spacing=config["preprocess"]["spacing_mm"],
    script:
        "../scripts/train.py"


rule train_tumor:
    input:
        split=L.split_table("{split}"),
        images=get_training_inputs,
        cord=rules.train_cord.output.model,
    output:
        model=L.model("{split}", "tumor", "best.pt"),
        summary=L.model("{split}", "tumor", "summary.json"),
        log_tsv=L.model("{split}", "tumor", "log.tsv"),
        curve=report(
            L.model("{split}", "tumor", "loss.png"),
            caption="../report/training.rst",
            category="Training",
            subcategory="split {split}",
        ),
    log:
        L.log("train/split-{split}_tumor"),
    benchmark:
        L.benchmark("train/split-{split}_tumor")
    priority: 1
    threads: config["training"]["threads"]
    resources:
        gpu=config["training"]["resources"]["gpu"],
        mem_mb=config["training"]["resources"]["mem_mb"],
        runtime=config["training"]["resources"]["runtime"],
    params:
        subjects=get_training_subjects,
        recipe=TRAINING_RECIPE["tumor"],
        spacing=config["preprocess"]["spacing_mm"],
    script:
        "../scripts/train.py"


# The single-step baseline (paper 2.6.2): the tumor model trained on the whole image, no cord crop.
rule train_single:
    input:
        split=L.split_table("{split}"),
        images=get_training_inputs,
    output:
        model=L.model("{split}", "single", "best.pt"),
        summary=L.model("{split}", "single", "summary.json"),
        log_tsv=L.model("{split}", "single", "log.tsv"),
        curve=report(
            L.model("{split}", "single", "loss.png"),
            caption="../report/training.rst",
            category="Training",
            subcategory="split {split}",
        ),
    log:
        L.log("train/split-{split}_single"),
    benchmark:
        L.benchmark("train/split-{split}_single")
    wildcard_constraints:
        split="|".join(SINGLE_SPLITS) or "none",
    threads: config["training"]["threads"]
    resources:
        gpu=config["training"]["resources"]["gpu"],
        mem_mb=config["training"]["resources"]["mem_mb"],
        runtime=config["training"]["resources"]["runtime"],
    params:
        subjects=get_training_subjects,
        recipe=TRAINING_RECIPE["single"],
        spacing=config["preprocess"]["spacing_mm"],
    script:
        "../scripts/train.py"
