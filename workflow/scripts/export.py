from pathlib import Path

from imsct.inference.export import write_model_folder
from imsct.logs import snakemake_log

log = snakemake_log(snakemake)  # noqa: F821 - injected by Snakemake
inp, out = snakemake.input, snakemake.output  # noqa: F821
write_model_folder(inp.cord, inp.tumor, Path(out.meta).parent, snakemake.wildcards.split,  # noqa: F821
                   snakemake.params.training, tuple(snakemake.params.spacing))  # noqa: F821
log.info("wrote %s", out.meta)
