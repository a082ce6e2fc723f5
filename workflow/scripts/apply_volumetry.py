from imsct.apply.outputs import write_tables
from imsct.logs import snakemake_log

smk = snakemake  # noqa: F821 - injected by Snakemake
snakemake_log(smk)
inp, out, par = smk.input, smk.output, smk.params
write_tables(list(par.records), dict(par.discs), list(inp.sessions), par.threshold, out.volumes, out.followup,
             out.growth, list(par.participants))
