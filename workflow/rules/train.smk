# Random splits, then per split: the cord localisation model and the tumor model (on cord crops).


rule splits:
    input:
        cohort=f"{RESULTS}/cohort/cohort.tsv",
    output:
        splits=expand(f"{RESULTS}/splits/split-{{split}}.tsv", split=SPLITS),
        summary=f"{RESULTS}/splits/summary.tsv",
    log:
        f"{LOGS}/splits.log",
    params:
        n=config["splits"]["n"],
        seed=config["splits"]["seed"],
        fractions=config["splits"]["fractions"],
    script:
        "../scripts/splits.py"


rule train_cord:
    input:
        split=f"{RESULTS}/splits/split-{{split}}.tsv",
        images=get_training_inputs,
    output:
        model=f"{RESULTS}/models/split-{{split}}/cord/best.pt",
        summary=f"{RESULTS}/models/split-{{split}}/cord/summary.json",
        log_tsv=f"{RESULTS}/models/split-{{split}}/cord/log.tsv",
        curve=report(
            f"{RESULTS}/models/split-{{split}}/cord/loss.png",
            caption="../report/training.rst",
            category="Training",
            subcategory="split {split}",
        ),
    log:
        f"{LOGS}/train/split-{{split}}_cord.log",
    benchmark:
        f"{BENCH}/train/split-{{split}}_cord.tsv"
    threads: config["training"]["threads"]
    resources:
        gpu=config["training"]["resources"]["gpu"],
        mem_mb=config["training"]["resources"]["mem_mb"],
        runtime=config["training"]["resources"]["runtime"],
    params:
        subjects=get_training_subjects,
        recipe=TRAINING_RECIPE,
        spacing=config["preprocess"]["spacing_mm"],
    script:
        "../scripts/train.py"


rule train_tumor:
    input:
        split=f"{RESULTS}/splits/split-{{split}}.tsv",
        images=get_training_inputs,
        cord=rules.train_cord.output.model,
    output:
        model=f"{RESULTS}/models/split-{{split}}/tumor/best.pt",
        summary=f"{RESULTS}/models/split-{{split}}/tumor/summary.json",
        log_tsv=f"{RESULTS}/models/split-{{split}}/tumor/log.tsv",
        curve=report(
            f"{RESULTS}/models/split-{{split}}/tumor/loss.png",
            caption="../report/training.rst",
            category="Training",
            subcategory="split {split}",
        ),
    log:
        f"{LOGS}/train/split-{{split}}_tumor.log",
    benchmark:
        f"{BENCH}/train/split-{{split}}_tumor.tsv"
    threads: config["training"]["threads"]
    resources:
        gpu=config["training"]["resources"]["gpu"],
        mem_mb=config["training"]["resources"]["mem_mb"],
        runtime=config["training"]["resources"]["runtime"],
    params:
        subjects=get_training_subjects,
        recipe=TRAINING_RECIPE,
        spacing=config["preprocess"]["spacing_mm"],
    script:
        "../scripts/train.py"


# The single-step baseline (paper 2.6.2): the tumor model trained on the whole image, no cord crop.
rule train_single:
    input:
        split=f"{RESULTS}/splits/split-{{split}}.tsv",
        images=get_training_inputs,
    output:
        model=f"{RESULTS}/models/split-{{split}}/single/best.pt",
        summary=f"{RESULTS}/models/split-{{split}}/single/summary.json",
        log_tsv=f"{RESULTS}/models/split-{{split}}/single/log.tsv",
        curve=report(
            f"{RESULTS}/models/split-{{split}}/single/loss.png",
            caption="../report/training.rst",
            category="Training",
            subcategory="split {split}",
        ),
    log:
        f"{LOGS}/train/split-{{split}}_single.log",
    benchmark:
        f"{BENCH}/train/split-{{split}}_single.tsv"
    wildcard_constraints:
        split="|".join(SINGLE_SPLITS) or "none",
    threads: config["training"]["threads"]
    resources:
        gpu=config["training"]["resources"]["gpu"],
        mem_mb=config["training"]["resources"]["mem_mb"],
        runtime=config["training"]["resources"]["runtime"],
    params:
        subjects=get_training_subjects,
        recipe=TRAINING_RECIPE,
        spacing=config["preprocess"]["spacing_mm"],
    script:
        "../scripts/train.py"
