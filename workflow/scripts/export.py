from pathlib import Path

from imsct.inference.export import write_model_folder
from imsct.logs import snakemake_log

log = snakemake_log(snakemake)  # noqa: F821 - injected by Snakemake
inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
write_model_folder(inp.cord, inp.tumor, Path(out.meta).parent, snakemake.wildcards.split,  # noqa: F821
                   p.training, tuple(p.spacing), p.postprocess, single_step=snakemake.rule == "export_single")  # noqa: F821
log.info("wrote %s", out.meta)
