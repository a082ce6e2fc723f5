from pathlib import Path

from imsct.logs import snakemake_log
from imsct.training.jobs import run_training

smk = snakemake  # noqa: F821 - injected by Snakemake
log = snakemake_log(smk)
kind = {"train_cord": "cord", "train_tumor": "tumor", "train_single": "single"}[smk.rule]
summary = run_training(kind, smk.wildcards.split, smk.params.subjects["train"], smk.params.subjects["val"],
                       Path(smk.output.model).parent, smk.params.recipe, smk.params.spacing,
                       threads=smk.threads, device=smk.config["training"]["device"],
                       cord_model=getattr(smk.input, "cord", None),
                       memory_format=smk.config["training"]["memory_format"])
log.info("best epoch %s, validation loss %.4f", summary["best_epoch"], summary["best_val_loss"])
