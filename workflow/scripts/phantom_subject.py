import time
from pathlib import Path

from imsct.bids import Naming
from imsct.logs import snakemake_log
from imsct.phantom.cohort import generate_subject, plan_cohort

smk = snakemake  # noqa: F821 - injected by Snakemake
log = snakemake_log(smk)
p = smk.params
spec = {s.participant_id: s for s in plan_cohort(p.subjects, p.seed)}[p.participant]
root = Path(smk.output.t2w).parents[2]
t0 = time.perf_counter()
paths = generate_subject(root, spec, p.seed, p.size, Naming.from_config(p.inputs))
log.info("%s (%s, %s) written in %.2f s", spec.participant_id, spec.tumor_type, spec.tumor_region,
         time.perf_counter() - t0)

