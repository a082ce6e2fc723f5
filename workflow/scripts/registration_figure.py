from imsct.logs import snakemake_log
from imsct.preprocess.qc import registration_figure

smk = snakemake  # noqa: F821 - injected by Snakemake
log = snakemake_log(smk)
inp = smk.input
registration_figure(inp.t2w, inp.t1w, smk.output.png, inp.qc, inp.cord)
