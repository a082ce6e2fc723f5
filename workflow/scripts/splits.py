import pandas as pd

from imsct.logs import snakemake_log
from imsct.splits import make_splits, split_table, write_splits

smk = snakemake  # noqa: F821 - injected by Snakemake
log = snakemake_log(smk)
p = smk.params
cohort = pd.read_csv(smk.input.cohort, sep="\t", dtype=str)
splits = make_splits(split_table(cohort), p.n, p.seed, p.fractions)
write_splits(splits, smk.output.summary.rsplit("/", 1)[0])
log.info("%d splits of %d participants", len(splits), len(splits[0]))
