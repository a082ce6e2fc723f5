from imsct.bids import Naming, discover
from imsct.io import write_tsv
from imsct.logs import snakemake_log

smk = snakemake  # noqa: F821 - injected by Snakemake
log = snakemake_log(smk)
cohort, excluded = discover(smk.params.bids_dir, Naming.from_config(smk.params.inputs))
write_tsv(cohort, smk.output.cohort)
write_tsv(excluded, smk.output.excluded)
log.info("%d subject(s)/session(s), %d excluded", len(cohort), len(excluded))
