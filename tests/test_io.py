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


def test_atomic_path_removes_its_own_stale_temporaries_only(tmp_path):
    """A killed run leaves ``.<name>.<token>.tmp<suffix>``; the next write of that file removes it, and
    leaves alone the temporaries of a neighbour whose name starts the same (``x.nii`` vs ``x.nii.gz``)."""
    mine = tmp_path / ".x.nii.k1ll3d_9.tmp.nii"
    neighbour = tmp_path / ".x.nii.gz.abcd1234.tmp.nii.gz"
    other = tmp_path / ".x.nii.notes.txt"
    for p in (mine, neighbour, other):
        p.write_bytes(b"left over")
    with atomic_path(tmp_path / "x.nii") as tmp:
        assert tmp.name.startswith(".x.nii.") and tmp.name.endswith(".tmp.nii")
        tmp.write_bytes(b"new")
    assert (tmp_path / "x.nii").read_bytes() == b"new"
    assert not mine.exists() and neighbour.exists() and other.exists()
    with atomic_path(tmp_path / "x.nii.gz") as tmp:
        tmp.write_bytes(b"new")
    assert not neighbour.exists() and other.exists()


def test_save_and_load_roundtrip(tmp_path, sct_data):
    img = nib.load(sct_data / "t2" / "t2.nii.gz")
    p = save_nifti(np.asanyarray(img.dataobj), img.affine, tmp_path / "t2.nii.gz")
    back = load_image(p)
    assert back.shape == img.shape and np.allclose(back.affine, img.affine)
    assert [f.name for f in tmp_path.iterdir()] == ["t2.nii.gz"]
    assert np.array_equal(np.asanyarray(back.dataobj), np.asanyarray(img.dataobj))


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32])
@pytest.mark.parametrize("order", ["C", "F"])
def test_save_nifti_writes_the_bytes_nibabel_writes(tmp_path, dtype, order):
    """save_nifti streams its own gzip: the file is byte for byte nib.save's (same header and data,
    gzip level 1 without name or time); with ``rle`` the data are the same, only the deflate differs."""
    rng = np.random.default_rng(0)
    data = np.asarray(rng.normal(100, 30, (7, 9, 5)), order=order).astype(dtype, order=order)
    affine = np.diag([0.8, 0.8, 2.0, 1.0])
    affine[:3, 3] = [-3, 5, 7]
    ours = save_nifti(data, affine, tmp_path / "ours.nii.gz")
    img = nib.Nifti1Image(data, affine)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    nib.save(img, tmp_path / "nib.nii.gz")
    assert ours.read_bytes() == (tmp_path / "nib.nii.gz").read_bytes()
    rle = save_nifti(data, affine, tmp_path / "rle.nii.gz", rle=True)
    assert gzip.decompress(rle.read_bytes()) == gzip.decompress(ours.read_bytes())
    assert np.array_equal(np.asanyarray(nib.load(rle).dataobj), data)


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


def test_write_errors_are_clear_and_leave_nothing_behind(tmp_path):
    """A real write failure (the kernel's file-size limit, EFBIG, standing in for a full disk): the
    CLI says which file could not be written and why, and leaves no partial file."""
    import subprocess
    import sys

    code = f"""
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
from imsct.cli import main
sys.exit(main(["phantom", r"{tmp_path / 'out'}", "--subjects", "1", "--size", "small"]))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "cannot write" in r.stderr and "sub-001_T2w.nii.gz: file too large" in r.stderr
    assert "Traceback" not in r.stderr
    assert not list((tmp_path / "out").rglob("*.nii.gz")) and not list((tmp_path / "out").rglob(".*tmp*"))


def test_outputs_are_readable_by_the_group(tmp_path):
    import os
    import stat

    p = save_nifti(np.zeros((2, 2, 2), np.uint8), np.eye(4), tmp_path / "x.nii.gz")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask


def test_sagittal_view_returns_slice_aspect_and_ras_image(sct_data):
    """The three values its docstring names, on the real T2w (stored PSR): the mid-sagittal slice
    (superior-inferior rows, anterior-posterior columns), its pixel aspect in mm, the RAS image."""
    from imsct.viz import sagittal_view

    img = nib.load(sct_data / "t2" / "t2.nii.gz")
    sl, aspect, ras = sagittal_view(np.asanyarray(img.dataobj), img.affine)
    assert nib.aff2axcodes(img.affine) != ("R", "A", "S") and nib.aff2axcodes(ras.affine) == ("R", "A", "S")
    a = np.asanyarray(ras.dataobj)
    assert sl.shape == (a.shape[2], a.shape[1])
    assert np.array_equal(sl, a[a.shape[0] // 2].T[::-1, ::-1])  # superior first, anterior first
    assert aspect == tuple(ras.header.get_zooms()[2:0:-1])
