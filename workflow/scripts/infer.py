from pathlib import Path

from imsct.batching import run_batch
from imsct.inference.predictor import Predictor, SegmentOptions, write_segmentation
from imsct.io import load_scan

smk = snakemake  # noqa: F821 - injected by Snakemake
p = smk.params
predictor = Predictor(Path(smk.input.model).parent, threads=smk.threads)  # sessions opened once per batch
opts = SegmentOptions(cascade=p.cascade, register=False)


def step(key):
    s = p.subjects[key]

    def run(log):
        seg = predictor.segment(load_scan(s["t2w"]), load_scan(s["t1w"]), opts)
        write_segmentation(seg, s["t2w"], s["out"], base=f"sub-{key}")
        write_segmentation(seg, s["t2w"], s["alt"], base=f"sub-{key}", alternative=True)
        log.info("%s: %s", "cascade" if seg.provenance["cascade"] else "single step", seg.provenance["seconds"])

    return run


run_batch({k: step(k) for k in p.subjects}, dict(zip(p.subjects, smk.log)), smk.output.manifest,
          {k: {"masks": s["out"], "alternative": s["alt"]} for k, s in p.subjects.items()})
