from pathlib import Path

from imsct.inference.predictor import Predictor, SegmentOptions, write_segmentation
from imsct.io import load_scan
from imsct.logs import snakemake_log

log = snakemake_log(snakemake)  # noqa: F821 - injected by Snakemake
inp, out = snakemake.input, snakemake.output  # noqa: F821
predictor = Predictor(Path(inp.model).parent, threads=snakemake.threads)  # noqa: F821
opts = SegmentOptions(cascade=snakemake.params.cascade, register=False)  # noqa: F821
seg = predictor.segment(load_scan(inp.t2w), load_scan(inp.t1w), opts)
base = f"sub-{snakemake.wildcards.subject}"  # noqa: F821
write_segmentation(seg, inp.t2w, Path(out.masks[0]).parent, base=base)
write_segmentation(seg, inp.t2w, Path(out.alt[0]).parent, base=base, alternative=True)
log.info("%s: %s", "cascade" if seg.provenance["cascade"] else "single step", seg.provenance["seconds"])
