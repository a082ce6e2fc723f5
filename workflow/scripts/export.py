from pathlib import Path

from imsct.logs import snakemake_log
from imsct.training.export import write_model_folder

smk = snakemake  # noqa: F821 - injected by Snakemake
log = snakemake_log(smk)
inp, out, p = smk.input, smk.output, smk.params
folder = Path(out.meta).parent
write_model_folder(inp.cord, inp.tumor, folder, smk.wildcards.split,
                   p.training, tuple(p.spacing), p.postprocess, single_step=smk.rule == "export_single",
                   inference_cfg=p.inference)
if p.postprocess.get("tune", {}).get("enabled"):  # the floors chosen on the split's validation subjects
    from imsct.inference.tuning import tune_model_folder

    tune_model_folder(folder, p.tune_subjects, p.postprocess["tune"], threads=smk.threads)
log.info("wrote %s", out.meta)
