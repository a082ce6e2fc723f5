from imsct.bids import Naming
from imsct.logs import snakemake_log
from imsct.phantom.cohort import write_dataset_files
from imsct.phantom.plan import plan_from_config

smk = snakemake  # noqa: F821 - injected by Snakemake
log = snakemake_log(smk)
p = smk.params
out = smk.output.participants.rsplit("/", 1)[0]
specs = plan_from_config(p.synthetic)
write_dataset_files(out, specs, p.synthetic["seed"], p.synthetic["size"], Naming.from_config(p.inputs))
log.info("wrote dataset files for %d subjects to %s", p.synthetic["subjects"], out)
