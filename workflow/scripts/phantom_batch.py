from pathlib import Path

from imsct.batching import run_batch
from imsct.bids import Naming
from imsct.phantom.cohort import generate_subject
from imsct.phantom.plan import plan_from_config

smk = snakemake  # noqa: F821 - injected by Snakemake
p = smk.params
specs = {s.participant_id[4:]: s for s in plan_from_config(p.synthetic)}
naming = Naming.from_config(p.inputs)
root = Path(smk.output.subjects[0]).parent  # the first subject's first folder: <dataset>/sub-XXX


def step(key):
    def run(log):
        spec = specs[key]
        generate_subject(root, spec, p.synthetic["seed"], p.synthetic["size"], naming, p.qc.get(key, False))
        log.info("%s (%s, %s) written", spec.participant_id, spec.tumor_type, spec.tumor_region)

    return run


run_batch({k: step(k) for k in p.batch}, dict(zip(p.batch, smk.log)), smk.output.manifest)
