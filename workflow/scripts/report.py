from pathlib import Path

from imsct.evaluation.report import ReportInputs, build_report
from imsct.logs import snakemake_log

log = snakemake_log(snakemake)  # noqa: F821 - injected by Snakemake
inp, p = snakemake.input, snakemake.params  # noqa: F821
evaluation = {k: getattr(inp, k) for k in ("metrics", "table4", "per_type", "cascade", "summary", "postprocess")}
report = ReportInputs(participants=inp.cohort, grids=list(inp.grids), registration=inp.registration,
                      training_logs=p.training_logs, evaluation=evaluation, subjects=p.subjects,
                      predictions=p.predictions)
out = build_report(report, snakemake.output.html, Path(snakemake.output.boxplot).parent)  # noqa: F821
log.info("report: %s", out)
