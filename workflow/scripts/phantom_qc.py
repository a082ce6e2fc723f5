from imsct.logs import snakemake_log
from imsct.phantom.qc import montage_from_files

smk = snakemake  # noqa: F821 - injected by Snakemake
log = snakemake_log(smk)
montage_from_files(dict(smk.input), smk.output.png)
log.info("wrote %s", smk.output.png)
