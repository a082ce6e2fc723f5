from imsct.evaluation.aggregate import write_tables
from imsct.logs import snakemake_log

smk = snakemake  # noqa: F821 - injected by Snakemake
log = snakemake_log(smk)
out = {k: v for k, v in smk.output.items()}
summary = write_tables(list(smk.input.tsv), out, list(smk.input.train_logs))
log.info("%s", summary)
