from imsct.bids import Naming, discover
from imsct.io import write_tsv
from imsct.logs import snakemake_log

log = snakemake_log(snakemake)  # noqa: F821 - injected by Snakemake
cohort, excluded = discover(snakemake.params.bids_dir, Naming.from_config(snakemake.params.inputs))  # noqa: F821
write_tsv(cohort, snakemake.output.cohort)  # noqa: F821
write_tsv(excluded, snakemake.output.excluded)  # noqa: F821
log.info("%d subject(s)/session(s), %d excluded", len(cohort), len(excluded))
