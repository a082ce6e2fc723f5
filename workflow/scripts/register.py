from imsct.apply.segment import register_or_skip
from imsct.logs import snakemake_log
from imsct.preprocess.register import RegistrationParams

smk = snakemake  # noqa: F821 - injected by Snakemake
log = snakemake_log(smk)
inp, out = smk.input, smk.output
cfg = dict(smk.params.registration)
cfg.pop("use_discs", None)
# apply (a new cohort) records an unreadable scan as skipped; training stops on it
res = register_or_skip(inp.t2w, inp.t1w, out.t1w, inp.get("fixed_discs"), inp.get("moving_discs"), out.transform,
                       out.qc, RegistrationParams(**cfg), smk.params.get("skip_unreadable", False))
if res is None:
    log.warning("skipped: unreadable input (see %s)", out.qc)
else:
    log.info("%s%s in %.1f s", res.method, " (flagged)" if res.flagged else "", res.qc["seconds"])
