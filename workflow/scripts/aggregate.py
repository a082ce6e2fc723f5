from imsct.evaluation.aggregate import write_tables
from imsct.logs import snakemake_log

log = snakemake_log(snakemake)  # noqa: F821 - injected by Snakemake
summary = write_tables(list(snakemake.input), dict(snakemake.output))  # noqa: F821
log.info("%s", summary)
