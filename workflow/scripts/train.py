from pathlib import Path

from imsct.logs import snakemake_log
from imsct.training.jobs import train_cord_model, train_tumor_model

log = snakemake_log(snakemake)  # noqa: F821 - injected by Snakemake
cfg = dict(snakemake.params.training)  # noqa: F821
split = int(snakemake.wildcards.split)  # noqa: F821
cfg["seed"] = cfg.get("seed", 0) + split  # seeded per split
cfg["threads"] = snakemake.threads  # noqa: F821
cfg["spacing_mm"] = list(snakemake.params.spacing)  # noqa: F821
subjects = snakemake.params.subjects  # noqa: F821
out_dir = Path(snakemake.output.model).parent  # noqa: F821
rule = snakemake.rule  # noqa: F821
if rule == "train_cord":
    summary = train_cord_model(subjects["train"], subjects["val"], out_dir, cfg)
elif rule == "train_single":
    summary = train_tumor_model(subjects["train"], subjects["val"], out_dir, cfg, single_step=True)
else:
    summary = train_tumor_model(subjects["train"], subjects["val"], out_dir, cfg, snakemake.input.cord)  # noqa: F821
log.info("best epoch %s, validation loss %.4f", summary["best_epoch"], summary["best_val_loss"])
