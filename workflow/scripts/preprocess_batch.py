from imsct.batching import run_batch
from imsct.preprocess.pipeline import preprocess_subject

smk = snakemake  # noqa: F821 - injected by Snakemake
p = smk.params


def step(key):
    s = p.subjects[key]
    return lambda log: preprocess_subject(s["inputs"], s["outputs"], p.registration, p.spacing, p.diameter_mm, log)


run_batch({k: step(k) for k in p.subjects}, dict(zip(p.subjects, smk.log)), smk.output.manifest,
          {k: s["outputs"] for k, s in p.subjects.items()})
