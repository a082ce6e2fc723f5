"""Atomic writing and validated loading."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest

from imsct.io import ImageError, atomic_path, load_image, save_nifti


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.nii.gz"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_save_and_load_roundtrip(tmp_path, sct_data):
    img = nib.load(sct_data / "t2" / "t2.nii.gz")
    p = save_nifti(np.asanyarray(img.dataobj), img.affine, tmp_path / "t2.nii.gz")
    back = load_image(p)
    assert back.shape == img.shape and np.allclose(back.affine, img.affine)
    assert [f.name for f in tmp_path.iterdir()] == ["t2.nii.gz"]


@pytest.mark.parametrize("case", ["missing", "not_nifti", "truncated", "4d", "2d", "nan"])
def test_load_image_errors_name_the_file(tmp_path, sct_data, case):
    p = tmp_path / f"{case}.nii.gz"
    data = np.asanyarray(nib.load(sct_data / "t2" / "t2.nii.gz").dataobj).astype(np.float32)
    if case == "not_nifti":
        p.write_bytes(gzip.compress(b"this is not an image"))
    elif case == "truncated":
        save_nifti(data, np.eye(4), p)
        p.write_bytes(p.read_bytes()[:2000])
    elif case == "4d":
        save_nifti(np.stack([data, data], -1), np.eye(4), p)
    elif case == "2d":
        save_nifti(data[:, :, 0], np.eye(4), p)
    elif case == "nan":
        data[0, 0, 0] = np.nan
        save_nifti(data, np.eye(4), p)
    with pytest.raises(ImageError) as exc:
        load_image(p)
    assert str(p) in str(exc.value)
