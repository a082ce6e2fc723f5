from imsct.apply.outputs import write_dataset_description
from imsct.logs import snakemake_log

smk = snakemake  # noqa: F821 - injected by Snakemake
snakemake_log(smk)
write_dataset_description(list(smk.input.models), smk.output[0])
