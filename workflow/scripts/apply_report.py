from pathlib import Path

from imsct.apply.report import build_report
from imsct.logs import snakemake_log

smk = snakemake  # noqa: F821 - injected by Snakemake
snakemake_log(smk)
inp = smk.input
build_report(inp.volumes, inp.followup, list(smk.params.records), sorted(map(str, Path(inp.growth).glob("*.png"))),
             smk.output[0], list(inp.models), smk.params.threshold)
