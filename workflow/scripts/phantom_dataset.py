from imsct.bids import Naming
from imsct.logs import snakemake_log
from imsct.phantom.cohort import plan_cohort, write_dataset_files

smk = snakemake  # noqa: F821 - injected by Snakemake
log = snakemake_log(smk)
p = smk.params
out = smk.output.participants.rsplit("/", 1)[0]
specs = plan_cohort(p.subjects, p.seed, p.block_fraction, p.narrow_fraction)
write_dataset_files(out, specs, p.seed, p.size, Naming.from_config(p.inputs))
log.info("wrote dataset files for %d subjects to %s", p.subjects, out)
