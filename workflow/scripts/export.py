from pathlib import Path

from imsct.logs import snakemake_log
from imsct.training.export import write_model_folder

smk = snakemake  # noqa: F821 - injected by Snakemake
log = snakemake_log(smk)
inp, out, p = smk.input, smk.output, smk.params
write_model_folder(inp.cord, inp.tumor, Path(out.meta).parent, smk.wildcards.split,
                   p.training, tuple(p.spacing), p.postprocess, single_step=smk.rule == "export_single",
                   inference_cfg=p.inference)
log.info("wrote %s", out.meta)
