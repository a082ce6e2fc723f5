from imsct.logs import snakemake_log
from imsct.preprocess.pipeline import cord_mask_file

smk = snakemake  # noqa: F821 - injected by Snakemake
log = snakemake_log(smk)
cord_mask_file(smk.input.centerline, smk.output.mask, smk.params.diameter_mm)
log.info("wrote %s", smk.output.mask)
