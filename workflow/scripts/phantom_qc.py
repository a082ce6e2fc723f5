from imsct.logs import snakemake_log
from imsct.phantom.qc import montage_from_files

log = snakemake_log(snakemake)  # noqa: F821 - injected by Snakemake
montage_from_files(dict(snakemake.input), snakemake.output.png)  # noqa: F821
log.info("wrote %s", snakemake.output.png)  # noqa: F821
