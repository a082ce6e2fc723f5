from pathlib import Path

from imsct.inference.predictor import Predictor, SegmentOptions, write_segmentation
from imsct.io import load_scan
from imsct.logs import snakemake_log

smk = snakemake  # noqa: F821 - injected by Snakemake
log = snakemake_log(smk)
inp, out = smk.input, smk.output
predictor = Predictor(Path(inp.model).parent, threads=smk.threads)
opts = SegmentOptions(cascade=smk.params.cascade, register=False)
seg = predictor.segment(load_scan(inp.t2w), load_scan(inp.t1w), opts)
base = f"sub-{smk.wildcards.subject}"
write_segmentation(seg, inp.t2w, Path(out.masks[0]).parent, base=base)
write_segmentation(seg, inp.t2w, Path(out.alt[0]).parent, base=base, alternative=True)
log.info("%s: %s", "cascade" if seg.provenance["cascade"] else "single step", seg.provenance["seconds"])
