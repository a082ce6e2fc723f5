import pandas as pd

from imsct.logs import snakemake_log
from imsct.splits import make_splits, split_table, write_splits

log = snakemake_log(snakemake)  # noqa: F821 - injected by Snakemake
p = snakemake.params  # noqa: F821
cohort = pd.read_csv(snakemake.input.cohort, sep="\t", dtype=str)  # noqa: F821
splits = make_splits(split_table(cohort), p.n, p.seed, p.fractions)
write_splits(splits, snakemake.output.summary.rsplit("/", 1)[0])  # noqa: F821
log.info("%d splits of %d participants", len(splits), len(splits[0]))
