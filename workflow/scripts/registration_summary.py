from imsct.logs import snakemake_log
from imsct.preprocess.pipeline import registration_table

log = snakemake_log(snakemake)  # noqa: F821 - injected by Snakemake
df = registration_table(list(snakemake.input), snakemake.output.tsv)  # noqa: F821
log.info("%d subjects; methods: %s", len(df), df["method"].value_counts().to_dict())
