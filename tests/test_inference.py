"""Cascaded inference with ONNX models: outputs on the T2w's own grid, postprocessing in mm3, the
single-step option, and no PyTorch needed."""

from __future__ import annotations

import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from imsct.inference.postprocess import remove_small
from imsct.inference.predictor import Predictor, SegmentOptions, write_segmentation
from imsct.io import load_image


@pytest.fixture(scope="module")
def real_segmentation(tiny_model_folder, sct_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("seg")
    t2 = sct_data / "t2/t2.nii.gz"
    seg = Predictor(tiny_model_folder).segment(load_image(t2), load_image(sct_data / "t1/t1w.nii.gz"))
    return seg, write_segmentation(seg, t2, out), t2


def test_outputs_land_on_the_native_t2w_grid(real_segmentation):
    seg, paths, t2_path = real_segmentation
    t2 = nib.load(t2_path)  # PSR, while the working grid is RAS at 2x1x1 mm
    assert set(paths) == {"tumor", "edema", "cavity", "wholetumor", "cord"}
    for name, p in paths.items():
        img = nib.load(p)
        assert img.shape == t2.shape and np.array_equal(img.affine, t2.affine), name
        assert set(np.unique(np.asanyarray(img.dataobj))) <= {0, 1}
        side = json.loads(p.with_name(p.name.replace(".nii.gz", ".json")).read_text())
        assert side["registration"]["method"].startswith("intensity") and "seconds" in side
    m = {k: np.asanyarray(nib.load(p).dataobj) > 0 for k, p in paths.items()}
    assert not (m["tumor"] & m["edema"]).any() and not (m["tumor"] & m["cavity"]).any()


def test_phantom_cascade_and_single_step(tiny_model_folder, small_cohort):
    sub = "sub-007"
    b = small_cohort / sub / "anat"
    t2 = load_image(b / f"{sub}_T2w.nii.gz")
    pred = Predictor(tiny_model_folder)
    casc = pred.segment(t2, load_image(b / f"{sub}_ce-gad_T1w.nii.gz"), SegmentOptions(cascade=True))
    single = pred.segment(t2, load_image(b / f"{sub}_ce-gad_T1w.nii.gz"), SegmentOptions(cascade=False, blend="gaussian", tta=True))
    assert casc.provenance["cascade"] and not single.provenance["cascade"]
    full = [[0, n] for n in single.provenance["working_shape"]]
    assert single.provenance["crop"] == full
    if casc.provenance["cord_found"]:
        assert casc.provenance["crop"] != full  # the cascade crops around the cord
        assert not casc.provenance["cord_fallback_whole_fov"]
    else:  # no cord: the whole field of view, and the sidecar says so
        assert casc.provenance["crop"] == full and casc.provenance["cord_fallback_whole_fov"]
    for seg in (casc, single):
        assert all(m.shape == t2.shape for m in seg.masks.values())


def test_small_objects_removed_in_mm3():
    m = np.zeros((10, 10, 10), bool)
    m[0, 0, 0:3] = True  # 3 voxels
    m[5:8, 5:8, 5:8] = True  # 27 voxels
    assert remove_small(m, 6.0, 2.0).sum() == 30  # 3 voxels of 2 mm3 = 6 mm3: kept
    assert remove_small(m, 6.0, 1.0).sum() == 27  # 3 voxels of 1 mm3 = 3 mm3: removed


def test_inference_needs_no_torch(tiny_model_folder, sct_data, tmp_path):
    code = f"""
import sys
sys.modules["torch"] = None  # any import of torch now fails
from imsct.cli import main
sys.exit(main(["segment", "--t2", r"{sct_data / 't2/t2.nii.gz'}", "--t1", r"{sct_data / 't1/t1w.nii.gz'}",
               "--model", r"{tiny_model_folder}", "--out", r"{tmp_path}"]))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "t2_label-wholetumor_mask.nii.gz").is_file()


@pytest.mark.parametrize("blend", ["uniform", "gaussian"])
def test_sliding_window_reassembles_exactly(blend):
    """With a network that copies its input, overlapping windows (and mirror TTA) must give the input
    back, including axes where the input is smaller than the patch (the patch shrinks there)."""
    from imsct.inference.sliding import sliding_window

    x = np.random.default_rng(0).random((2, 20, 37, 50), dtype=np.float32)
    copy = lambda b: np.repeat(b[:, :1], 3, axis=1)  # noqa: E731
    y = sliding_window(copy, x, (32, 64, 32), (16, 32, 16), 3, 4, blend, tta=True)
    assert y.shape == (3, 20, 37, 50)
    np.testing.assert_allclose(y[0], x[0], atol=1e-5)
    with pytest.raises(ValueError, match="multiple"):
        sliding_window(copy, x, (30, 64, 32), (16, 32, 16), 3, 4)
