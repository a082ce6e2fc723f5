from pathlib import Path

from imsct.evaluation.report import ReportInputs, build_report
from imsct.logs import snakemake_log

smk = snakemake  # noqa: F821 - injected by Snakemake
log = snakemake_log(smk)
inp, p = smk.input, smk.params
tables = ("metrics", "table4", "per_type", "per_acquisition", "cascade", "summary", "postprocess")
evaluation = {k: getattr(inp, k) for k in tables}
report = ReportInputs(participants=inp.cohort, grids=list(p.grids), registration=inp.registration,
                      training_logs=p.training_logs, evaluation=evaluation, subjects=p.subjects,
                      predictions=p.predictions, model_folders=p.model_folders)
out = build_report(report, smk.output.html, Path(smk.output.boxplot).parent)
log.info("report: %s", out)
