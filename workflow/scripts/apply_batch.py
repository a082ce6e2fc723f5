from pathlib import Path

from imsct.apply.segment import register_or_skip, segment_scan
from imsct.batching import run_batch
from imsct.inference.predictor import Predictor
from imsct.preprocess.register import RegistrationParams

smk = snakemake  # noqa: F821 - injected by Snakemake
p = smk.params
predictor = Predictor([Path(m).parent for m in smk.input.models], p.device, smk.threads)  # once per batch
params = RegistrationParams.from_config(p.registration)


def step(scan):
    s = p.scans[scan]

    def run(log):
        inp, t1w = s["inputs"], None
        if "t1w" in inp and s["registered"]:  # the training cohort: preprocessing registered it
            t1w = s["t1w"]
            log.info("registration: preprocessing's (%s)", t1w)
        elif "t1w" in inp:  # registered onto the T2w; an unreadable scan is recorded as skipped
            res = register_or_skip(inp["t2w"], inp["t1w"], s["t1w"], inp.get("fixed_discs"), inp.get("moving_discs"),
                                   s["transform"], s["qc"], params, skip_unreadable=True)
            t1w = s["t1w"]
            log.info("registration: %s", "skipped" if res is None else res.method)
        rec = segment_scan(predictor, s["key"], inp["t2w"], t1w, s["qc"] if t1w else None, s["anat"], s["record"],
                           p.probabilities)
        log.info("%s: %s", scan, rec["status"])

    return run


run_batch({s: step(s) for s in p.scans}, dict(zip(p.scans, smk.log)), smk.output.manifest,
          {s: {"anat": v["anat"], "record": v["record"]} for s, v in p.scans.items()})
