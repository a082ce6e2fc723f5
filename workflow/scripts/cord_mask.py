from imsct.logs import snakemake_log
from imsct.preprocess.pipeline import cord_mask_file

log = snakemake_log(snakemake)  # noqa: F821 - injected by Snakemake
cord_mask_file(snakemake.input.centerline, snakemake.output.mask, snakemake.params.diameter_mm)  # noqa: F821
log.info("wrote %s", snakemake.output.mask)  # noqa: F821
