import json, numpy as np, nibabel as nib
from imsct.inference.predictor import Predictor, SegmentOptions
from imsct.io import load_image
from imsct.evaluation.metrics import compare

def test_probe(tiny_model_folder, tiny_models, small_cohort, sct_data):
    print("train seconds", tiny_models[3], tiny_models[1], tiny_models[2])
    pred = Predictor(tiny_model_folder)
    for sub in ("sub-007", "sub-008", "sub-001"):
        b = small_cohort / sub / "anat"
        t2 = load_image(b / f"{sub}_T2w.nii.gz")
        seg = pred.segment(t2, load_image(b / f"{sub}_ce-gad_T1w.nii.gz"), SegmentOptions(register=False))
        lab = small_cohort / "derivatives/labels" / sub / "anat"
        g = {k: np.asanyarray(nib.load(lab / f"{sub}_T2w_label-{k}_mask.nii.gz").dataobj) > 0 for k in ("tumor", "edema", "cavity")}
        g["wholetumor"] = g["tumor"] | g["edema"] | g["cavity"]
        print(sub, seg.provenance["crop"], seg.provenance["working_shape"], {k: compare(g[k], seg.masks[k], 1.0)["dice"] for k in g})
    seg = pred.segment(load_image(sct_data / "t2/t2.nii.gz"), load_image(sct_data / "t1/t1w.nii.gz"))
    sm = np.asanyarray(nib.load(sct_data / "t2/t2_seg-manual.nii.gz").dataobj) > 0
    print("real cord", seg.masks["cord"].sum(), (seg.masks["cord"].astype(bool) & sm).sum(), sm.sum(), seg.provenance["cord_found"])
