"""NIfTI and table I/O: validated loading and atomic writing.

Every writer in the package goes through :func:`atomic_path`, so an interrupted run never leaves a
half-written file under its final name.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import struct
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import nibabel as nib


def _nib():
    """nibabel, imported on first use: the workflow's parse (``imsct.bids`` imports this module) and
    the commands that read no image need none of it (about 0.2 s of every dry-run)."""
    import nibabel

    return nibabel


class ImageError(ValueError):
    """An input image is unusable; the message names the file and the problem."""


class OutputError(OSError):
    """An output cannot be written (disk full, no permission, read-only filesystem); names the file."""


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files readable by their owner only; outputs get the usual permissions instead, so
# that a lab's shared results folder stays readable by the group.
_FILE_MODE = 0o666 & ~_current_umask()
_WRITE_ERRORS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
                 errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
                 errno.EROFS: "read-only filesystem", errno.EFBIG: "file too large"}


def _output_error(path: Path, exc: OSError) -> OSError:
    if exc.errno in _WRITE_ERRORS:
        err = OutputError(f"cannot write {path}: {_WRITE_ERRORS[exc.errno]}")
        err.errno = exc.errno
        return err
    return exc


def _temporary_suffix(path: Path) -> str:
    """The suffix :func:`atomic_path` gives the temporaries of ``path`` (``.tmp.nii.gz`` for a
    ``.nii.gz``), so writers that go by the name pick the right format."""
    return ".tmp" + ("".join(path.suffixes[-2:]) if path.name.endswith(".nii.gz") else path.suffix)


def _stale_temporaries(path: Path) -> list[Path]:
    """Files ``.<name>.<token>.tmp<suffix>`` beside ``path`` (what :func:`atomic_path` names its
    temporaries: ``tempfile``'s token has no dot), and only those: the temporaries of ``x.nii.gz``
    (``.x.nii.gz.<token>.tmp.nii.gz``) are not those of ``x.nii``. A directory scan with string tests,
    as a glob compiles a pattern per file name."""
    prefix, suffix = f".{path.name}.", _temporary_suffix(path)

    def ours(name: str) -> bool:
        token, sep, tail = name[len(prefix):].partition(".")
        return name.startswith(prefix) and bool(token) and sep == "." and "." + tail == suffix

    try:
        with os.scandir(path.parent) as entries:
            return [Path(e.path) for e in entries if ours(e.name)]
    except (FileNotFoundError, NotADirectoryError):
        return []


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds, so
    that no reader ever sees a half-written file (a killed job leaves only a hidden temporary).

    The temporary name keeps the final suffixes (``.nii.gz``) so writers pick the right format. Disk
    full or permission errors become an :class:`OutputError` naming ``path``.
    """
    path = Path(path)
    # temporaries of the same file left by a killed run (kill -9 skips every cleanup)
    for stale in _stale_temporaries(path):
        stale.unlink(missing_ok=True)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_temporary_suffix(path), dir=path.parent)
    except OSError as exc:
        raise _output_error(path, exc) from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, _FILE_MODE)
        os.replace(tmp_path, path)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        raise _output_error(path, exc) from exc
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


class _GzipSink(io.IOBase):
    """Write-only file object for nibabel: gzip of what it is given, streamed into ``fh``, with the
    header and deflate settings of nibabel's own gzip writer (level 1, no name, no time); only seeks to
    where it already is."""

    def __init__(self, fh, strategy: int = zlib.Z_DEFAULT_STRATEGY):
        super().__init__()
        self._fh, self._pos, self._crc = fh, 0, 0
        self._z = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS, 8, strategy)
        fh.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\xff")  # magic, deflate, no flags, mtime 0, fastest, OS unknown

    def write(self, data) -> int:
        n = memoryview(data).nbytes
        self._pos += n
        self._crc = zlib.crc32(data, self._crc)
        self._fh.write(self._z.compress(data))
        return n

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        if (offset, whence) not in ((self._pos, 0), (0, 1)):
            raise OSError("a gzip stream only moves forward")
        return self._pos

    def finish(self) -> None:
        self._fh.write(self._z.flush())
        self._fh.write(struct.pack("<II", self._crc, self._pos & 0xFFFFFFFF))


def save_nifti(
    data: np.ndarray, affine: np.ndarray, path: str | os.PathLike, dtype=None, header=None, rle: bool = False
) -> Path:
    """Write ``data`` on the grid ``affine`` atomically; sform and qform both set (code 1, scanner).

    ``.nii.gz`` files are gzip level 1, streamed, byte for byte what nibabel writes (no file name or
    time in the header, so the same data always give the same bytes). ``rle``: zlib's run-length
    strategy (Z_RLE) instead, about twice as fast for noisy images and as small for them and for
    one-byte masks, but several times larger for masks of wider types (float 1.0 repeats every 4
    bytes, which it does not see)."""
    arr = np.asarray(data if dtype is None else data.astype(dtype, copy=False))
    if arr.nbytes <= 1 << 26:
        arr = np.asfortranarray(arr)  # NIfTI's voxel order (x fastest): written without a strided gather
    img = _nib().Nifti1Image(arr, np.asarray(affine, dtype=float), header=header)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.name.endswith(".nii.gz"):
            with open(tmp, "wb") as fh:
                sink = _GzipSink(fh, zlib.Z_RLE if rle else zlib.Z_DEFAULT_STRATEGY)
                img.to_file_map({"image": _nib().FileHolder(fileobj=sink)})
                sink.finish()
        else:
            _nib().save(img, tmp)
    return path


def write_json(obj, path: str | os.PathLike) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")
    return path


def write_text(text: str, path: str | os.PathLike) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def write_tsv(df, path: str | os.PathLike) -> Path:
    """Write a pandas DataFrame as TSV (no index, 'n/a' for missing, as BIDS does)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=False, na_rep="n/a")
    return path


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def load_image(path: str | os.PathLike, ndim: int = 3) -> nib.Nifti1Image:
    """Load a NIfTI image and check that it is usable: readable, ``ndim``-D (trailing 1-length
    dimensions dropped), finite, and with an invertible affine. Raises :class:`ImageError`."""
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: file not found")
    try:
        nib = _nib()
        img = nib.load(str(path))
        if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
            raise ImageError(f"{path}: not a NIfTI image ({type(img).__name__})")
        data = np.asanyarray(img.dataobj)
    except ImageError:
        raise
    except Exception as exc:  # nibabel raises many types for corrupt/truncated files
        raise ImageError(f"{path}: cannot be read as NIfTI ({type(exc).__name__}: {exc})") from None
    while data.ndim > ndim and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != ndim:
        raise ImageError(f"{path}: expected a {ndim}D image, got shape {data.shape}")
    if min(data.shape) < 1:
        raise ImageError(f"{path}: empty image, shape {data.shape}")
    if np.issubdtype(data.dtype, np.floating) and not np.isfinite(data).all():
        raise ImageError(f"{path}: contains NaN or infinite voxels")
    affine = img.affine
    if affine is None or not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise ImageError(f"{path}: affine is missing or singular")
    return _nib().Nifti1Image(data, affine, header=img.header)


MIN_VOXELS_PER_AXIS = 3


def check_scan(img: nib.Nifti1Image, name) -> nib.Nifti1Image:
    """An MRI scan (not a mask) must have signal and some extent along every axis: a constant image
    (all zero: a failed export) or a single slice cannot be registered or segmented."""
    data = np.asanyarray(img.dataobj)
    if min(data.shape[:3]) < MIN_VOXELS_PER_AXIS:
        raise ImageError(f"{name}: too few voxels along an axis, shape {tuple(data.shape)} (at least "
                         f"{MIN_VOXELS_PER_AXIS} slices are needed on every axis)")
    lo, hi = data.min(), data.max()
    if lo == hi:
        raise ImageError(f"{name}: every voxel is {lo}: the image holds no signal")
    return img


def load_scan(path: str | os.PathLike) -> nib.Nifti1Image:
    """:func:`load_image` for a T2w or T1w scan, with :func:`check_scan`."""
    return check_scan(load_image(path), path)


def same_grid(a: nib.Nifti1Image, b: nib.Nifti1Image, atol: float = 1e-3) -> bool:
    """True when two images share shape and affine (to ``atol`` mm)."""
    return a.shape[:3] == b.shape[:3] and np.allclose(a.affine, b.affine, atol=atol)
