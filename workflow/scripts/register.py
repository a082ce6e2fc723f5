from imsct.logs import snakemake_log
from imsct.preprocess.register import RegistrationParams, register_files

smk = snakemake  # noqa: F821 - injected by Snakemake
log = snakemake_log(smk)
inp, out = smk.input, smk.output
cfg = dict(smk.params.registration)
cfg.pop("use_discs", None)
res = register_files(inp.t2w, inp.t1w, out.t1w, inp.get("fixed_discs"), inp.get("moving_discs"),
                     out.transform, out.qc, RegistrationParams(**cfg))
log.info("%s%s in %.1f s", res.method, " (flagged)" if res.flagged else "", res.qc["seconds"])
