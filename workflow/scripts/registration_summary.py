from imsct.logs import snakemake_log
from imsct.preprocess.pipeline import registration_table

smk = snakemake  # noqa: F821 - injected by Snakemake
log = snakemake_log(smk)
df = registration_table(list(smk.params.qc), smk.output.tsv)
log.info("%d subjects; methods: %s", len(df), df["method"].value_counts().to_dict())
