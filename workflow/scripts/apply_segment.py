from pathlib import Path

from imsct.apply.segment import segment_scan
from imsct.inference.predictor import Predictor
from imsct.logs import snakemake_log

smk = snakemake  # noqa: F821 - injected by Snakemake
log = snakemake_log(smk)
inp, out = smk.input, smk.output
predictor = Predictor([Path(m).parent for m in inp.models], smk.params.device, smk.threads)
rec = segment_scan(predictor, smk.params.key, inp.t2w, inp.get("t1w"), inp.get("qc"), out.anat, out.record,
                   smk.params.probabilities)
log.info("sub-%s: %s", smk.params.key, rec["status"])
