from imsct.logs import snakemake_log
from imsct.preprocess.qc import registration_figure

log = snakemake_log(snakemake)  # noqa: F821 - injected by Snakemake
inp = snakemake.input  # noqa: F821
registration_figure(inp.t2w, inp.t1w, snakemake.output.png, inp.qc, inp.cord)  # noqa: F821
