from imsct.evaluation.evaluate import evaluate_split
from imsct.io import write_tsv
from imsct.logs import snakemake_log

log = snakemake_log(snakemake)  # noqa: F821 - injected by Snakemake
p = snakemake.params  # noqa: F821
df = evaluate_split(snakemake.wildcards.split, p.subjects, p.pred_root, p.overlap_mm3, tuple(p.modes))  # noqa: F821
write_tsv(df, snakemake.output.tsv)  # noqa: F821
log.info("%d rows for %d subjects", len(df), df["subject"].nunique())
