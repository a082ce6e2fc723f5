from imsct.evaluation.aggregate import write_tables
from imsct.logs import snakemake_log

log = snakemake_log(snakemake)  # noqa: F821 - injected by Snakemake
out = {k: v for k, v in snakemake.output.items()}  # noqa: F821
summary = write_tables(list(snakemake.input.tsv), out, list(snakemake.input.train_logs))  # noqa: F821
log.info("%s", summary)
