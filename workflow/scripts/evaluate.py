from imsct.evaluation.evaluate import evaluate_split
from imsct.io import write_tsv
from imsct.logs import snakemake_log

smk = snakemake  # noqa: F821 - injected by Snakemake
log = snakemake_log(smk)
p = smk.params
df = evaluate_split(smk.wildcards.split, p.subjects, p.pred_dirs, p.overlap_mm3)
write_tsv(df, smk.output.tsv)
log.info("%d rows for %d subjects", len(df), df["subject"].nunique())
