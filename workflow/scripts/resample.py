from imsct.logs import snakemake_log
from imsct.preprocess.pipeline import resample_subject

smk = snakemake  # noqa: F821 - injected by Snakemake
log = snakemake_log(smk)
inp, out = smk.input, smk.output
si, ap, rl = smk.params.spacing
masks = {k: inp[k] for k in ("tumor", "edema", "cavity", "cord")}
grid = resample_subject(inp.t2w, inp.t1w, masks, dict(out.items()), (si, ap, rl))
log.info("working grid %s", grid["working_shape"])
