import time
from pathlib import Path

from imsct.bids import Naming
from imsct.logs import snakemake_log
from imsct.phantom.cohort import generate_subject, plan_cohort

log = snakemake_log(snakemake)  # noqa: F821 - injected by Snakemake
p = snakemake.params  # noqa: F821
spec = {s.participant_id: s for s in plan_cohort(p.subjects, p.seed)}[p.participant]
root = Path(snakemake.output.t2w).parents[2]  # noqa: F821 - <root>/sub-X/anat/file
t0 = time.perf_counter()
paths = generate_subject(root, spec, p.seed, p.size, Naming.from_config(p.inputs))
log.info("%s (%s, %s) written in %.2f s", spec.participant_id, spec.tumor_type, spec.tumor_region,
         time.perf_counter() - t0)
