from imsct.logs import snakemake_log
from imsct.preprocess.pipeline import resample_subject

log = snakemake_log(snakemake)  # noqa: F821 - injected by Snakemake
inp, out = snakemake.input, snakemake.output  # noqa: F821
si, ap, rl = snakemake.params.spacing  # noqa: F821
masks = {k: inp[k] for k in ("tumor", "edema", "cavity", "cord")}
grid = resample_subject(inp.t2w, inp.t1w, masks, dict(out.items()), (si, ap, rl))
log.info("working grid %s", grid["working_shape"])
