"""Lesions implanted into the real SCT scans: geometry, volumes, contrasts, layout and determinism."""

from __future__ import annotations

import filecmp
import json

import nibabel as nib
import numpy as np
import pytest
from scipy.ndimage import binary_dilation, distance_transform_edt

from imsct.bids import discover
from imsct.classes import LESIONS
from imsct.phantom.implant import cord_frame, write_implanted_cohort
from imsct.preprocess.transforms import resample_to

N, SEED = 3, 2  # a hemangioblastoma (with edema), an astrocytoma, an ependymoma; each with a cavity


@pytest.fixture(scope="module")
def implanted(sct_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("implant") / "bids"
    truths = write_implanted_cohort(out, N, SEED, sct_data.parent)
    return out, truths


def _load(out, sub):
    t2 = nib.load(out / sub / "anat" / f"{sub}_T2w.nii.gz")
    t1 = nib.load(out / sub / "anat" / f"{sub}_ce-gad_T1w.nii.gz")
    labels = {c: nib.load(out / f"derivatives/labels/{sub}/anat/{sub}_T2w_label-{c}_mask.nii.gz")
              for c in (*LESIONS, "centerline")}
    return t2, t1, labels


def test_dataset_follows_the_input_contract(implanted):
    out, truths = implanted
    cohort, excluded = discover(out)
    assert len(cohort) == N and excluded.empty
    assert sorted(cohort["tumor_type"]) == sorted(t["tumor_type"] for t in truths)
    assert len({t["tumor_type"] for t in truths}) == 3


def test_masks_on_the_t2w_grid_inside_the_cord_and_exclusive(implanted, sct_data):
    out, truths = implanted
    cord_img = nib.load(sct_data / "t2/t2_seg-manual.nii.gz")
    cord = np.asanyarray(cord_img.dataobj) > 0
    grown = binary_dilation(cord, iterations=1)  # the lesion expands the cord a little
    for t in truths:
        t2, t1, labels = _load(out, t["participant_id"])
        assert t2.shape == cord.shape and np.allclose(t2.affine, cord_img.affine)
        assert not np.allclose(t1.affine, t2.affine) and t1.shape != t2.shape  # the T1w keeps its own grid
        masks = {c: np.asanyarray(labels[c].dataobj) for c in LESIONS}
        for c, m in masks.items():
            assert m.shape == t2.shape and np.allclose(labels[c].affine, t2.affine) and set(np.unique(m)) <= {0, 1}
        stack = np.stack(list(masks.values()))
        assert stack.sum(axis=0).max() == 1 and masks["tumor"].any()
        assert grown[stack.any(axis=0)].all(), "labels outside the (slightly dilated) real cord"


def test_volumes_as_designed(implanted):
    """Labelled volumes match the lesion model's bookkeeping (which knows nothing of voxels)."""
    _, truths = implanted
    for t in truths:
        designed = t["lesion_model"]["designed_cm3"]
        for c in LESIONS:
            v, d = t["volumes_cm3"][c], designed[c]
            assert (v == 0) == (d == 0), (t["participant_id"], c, v, d)
            assert abs(v - d) <= max(0.2 * d, 0.05), (t["participant_id"], c, v, d)
        assert t["volumes_cm3"]["cavity"] > 0  # this plan gives every subject a cavity


def test_normal_cord_above_and_below(implanted, sct_data):
    """At least 8 mm of lesion-free cord above and below the lesions, superior-inferior in world mm."""
    out, truths = implanted
    cord_img = nib.as_closest_canonical(nib.load(sct_data / "t2/t2_seg-manual.nii.gz"))
    cord_rows = np.flatnonzero((np.asanyarray(cord_img.dataobj) > 0).any(axis=(0, 1)))
    dz = cord_img.header.get_zooms()[2]
    for t in truths:
        _, _, labels = _load(out, t["participant_id"])
        les = sum(np.asanyarray(nib.as_closest_canonical(labels[c]).dataobj) for c in LESIONS) > 0
        rows = np.flatnonzero(les.any(axis=(0, 1)))
        assert ((rows.min() - cord_rows.min()) * dz >= 8
                and (cord_rows.max() - rows.max()) * dz >= 8), t["participant_id"]


def test_contrasts_on_real_intensities(implanted, sct_data):
    """Cavities are CSF-like (brighter than normal cord on T2w, darker on T1w, the T1w moved onto the
    T2w grid by the registration) and hemangioblastomas enhance; normal cord away from the lesion is
    untouched."""
    out, truths = implanted
    real_t2 = np.asanyarray(nib.load(sct_data / "t2/t2.nii.gz").dataobj)
    cord = np.asanyarray(nib.load(sct_data / "t2/t2_seg-manual.nii.gz").dataobj) > 0
    for t in truths:
        t2, t1, labels = _load(out, t["participant_id"])
        a2 = np.asanyarray(t2.dataobj).astype(float)
        m = np.asarray(t["t1w_from_t2w_world"])
        a1 = resample_to(np.asanyarray(t1.dataobj), t1.affine, t2.shape, t2.affine, m)
        masks = {c: np.asanyarray(labels[c].dataobj) > 0 for c in LESIONS}
        lesion = binary_dilation(np.any(list(masks.values()), axis=0), iterations=3)
        normal = cord & ~lesion
        cav = masks["cavity"]
        assert a2[cav].mean() > 1.8 * a2[normal].mean(), t["participant_id"]
        assert a1[cav].mean() < 0.75 * a1[normal].mean(), t["participant_id"]
        if t["tumor_type"] == "hemangioblastoma" and masks["tumor"].sum() >= 10:
            assert a1[masks["tumor"]].mean() > 1.15 * a1[normal].mean(), t["participant_id"]
        # the cord stretches around its centerline (3 mm into the CSF), also opposite an eccentric tumor
        far = distance_transform_edt(~np.any(list(masks.values()), axis=0)) > 12
        assert np.array_equal(a2[far], real_t2[far])  # beyond the lesion's reach, the real scan as it was


def test_same_seed_same_bytes(implanted, sct_data, tmp_path):
    out, _ = implanted
    again = tmp_path / "again"
    write_implanted_cohort(again, N, SEED, sct_data)
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for f in files:
        assert filecmp.cmp(out / f, again / f, shallow=False), f
    truth = json.loads((again / "derivatives/phantom/sub-001/sub-001_truth.json").read_text())
    assert truth["seed"] == SEED


def test_cord_frame_does_not_depend_on_storage_orientation(sct_data):
    img = nib.load(sct_data / "t2/t2_seg-manual.nii.gz")  # stored PSR
    can = nib.as_closest_canonical(img)  # the same voxels stored RAS
    a = cord_frame(np.asanyarray(img.dataobj), img.affine)
    b = cord_frame(np.asanyarray(can.dataobj), can.affine)
    assert np.allclose(a.points, b.points, atol=1e-6) and np.allclose(a.rx, b.rx) and np.allclose(a.ry, b.ry)
    assert 45 < a.s[-1] - a.s[0] < 60  # the cervical cord in a 55 mm field of view
    assert np.all((a.rx > 4) & (a.rx < 8) & (a.ry > 3) & (a.ry < 6)) and np.all(a.rx > a.ry)
    assert (a.tangent[:, 2] > 0.8).all() and (a.anterior[:, 1] > 0.8).all()  # superior, anterior
