"""The one layout of derived files: names as documented, the same for a subject key and for a
Snakemake wildcard (the workflow's dry-run and end-to-end tests check the rules use it)."""

from __future__ import annotations

from imsct.paths import Layout, mask_name, working_grid_paths


def test_layout_names_and_wildcards():
    L = Layout("res")
    assert L.cord_mask("01_ses-a") == "res/preprocess/sub-01_ses-a/sub-01_ses-a_label-cord_mask.nii.gz"
    assert L.registered_t1w("{subject}") == (
        "res/preprocess/sub-{subject}/sub-{subject}_space-T2w_desc-registered_T1w.nii.gz")
    assert L.registered_t1w("{subject}").format(subject="007") == L.registered_t1w("007")
    assert L.working_grid("01") == working_grid_paths("res/preprocess", "01")
    assert L.working_grid("01")["t2w"] == "res/preprocess/sub-01/sub-01_res-1x1x2_desc-preproc_T2w.nii.gz"
    assert Layout("res", (0.8, 0.8, 2)).working_grid("01")["grid"].endswith("sub-01_res-0p8x0p8x2_grid.json")
    assert L.model("03", "single", "log.tsv") == "res/models/split-03/single/log.tsv"
    assert L.model_folder("03", single=True) == "res/models/split-03/onnx-single/model.json"
    assert L.prediction("00", "cascade-exclusive", "02", "edema", ".json") == (
        "res/predictions/split-00/cascade-exclusive/sub-02/sub-02_label-edema_mask.json")
    assert L.prediction_subject_dir("00", "cascade", "02") == "res/predictions/split-00/cascade/sub-02"
    assert L.preprocess_subject_dir("01_ses-a") == "res/preprocess/sub-01_ses-a"
    assert mask_name("sub-01_T2w", "wholetumor") == "sub-01_T2w_label-wholetumor_mask.nii.gz"
    assert L.qc_figure("phantom", "01") == "res/qc/phantom/sub-01_phantom-qc.png"
    assert L.log("infer/split-00_cascade_sub-01") == "res/logs/infer/split-00_cascade_sub-01.log"
