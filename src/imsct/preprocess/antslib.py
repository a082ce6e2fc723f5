"""antspyx's compiled ANTs/ITK library, without importing the antspyx package.

``import ants`` executes ``ants/__init__``, which imports antspyx's learning, plotting and
deep-learning helpers (statsmodels, scikit-learn, matplotlib, pandas): seconds on a laptop, more
than a registration takes. Registration needs only the compiled library (``ants/lib*.so``: images
from arrays, ``antsRegistration``), which loads in about a tenth of a second. This module loads that
extension alone and registers it as ``ants.lib``, the name antspyx gives it, so a later
``import ants`` (a user's, or a test's) reuses it instead of initialising the extension twice.

Transforms are read and written as ITK writes them (``.mat``: MATLAB v4, variables
``AffineTransform_double_3_3`` and ``fixed``) with :mod:`scipy.io`, instead of antspyx's transform
objects (also behind ``import ants``).
"""

from __future__ import annotations

import importlib.util
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np

ITK_AFFINE = "AffineTransform_double_3_3"
ITK_AFFINE_FLOAT = "AffineTransform_float_3_3"


@lru_cache(maxsize=1)
def lib():
    """The compiled module (``ants.lib``), loaded once."""
    if "ants.lib" in sys.modules:
        return sys.modules["ants.lib"]
    spec = importlib.util.find_spec("ants")  # locates the package without executing it
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("No module named 'ants'", name="ants")
    folder = Path(list(spec.submodule_search_locations)[0])
    found = sorted(folder.glob("lib.*.so")) + sorted(folder.glob("lib.*.pyd"))
    if not found:
        raise ModuleNotFoundError(f"antspyx at {folder} has no compiled library (lib.*.so)", name="ants")
    ext = importlib.util.spec_from_file_location("ants.lib", found[0])
    module = importlib.util.module_from_spec(ext)
    ext.loader.exec_module(module)
    sys.modules["ants.lib"] = module
    return module


class Image:
    """An ITK float image held by the compiled library (what ``antsRegistration`` reads through a
    pointer string); keeps the array alive as long as the image."""

    def __init__(self, data: np.ndarray, origin, spacing, direction):
        lb = lib()
        self._data = np.ascontiguousarray(np.asarray(data, dtype=np.float32).T)  # ITK: x fastest
        self.shape = tuple(data.shape)
        self.pointer = lb.fromNumpyF3(self._data, self.shape)
        lb.setOrigin(self.pointer, [float(v) for v in origin])
        lb.setSpacing(self.pointer, [float(v) for v in spacing])
        lb.setDirection(self.pointer, np.asarray(direction, dtype=float))

    def ptr(self) -> str:
        """The pointer string ``antsRegistration`` takes in place of a file name."""
        return lib().ptrstr(self.pointer)


def registration(args: list[str]) -> None:
    """Run ``antsRegistration`` with command-line ``args`` (images as :meth:`Image.ptr` strings)."""
    code = lib().antsRegistration([str(a) for a in args])
    if code not in (0, None):
        raise RuntimeError(f"antsRegistration exited with status {code}")


def write_affine(path, matrix_lps: np.ndarray, center=(0.0, 0.0, 0.0)) -> None:
    """An ITK affine transform file (``.mat``) from a 4x4 LPS matrix (about ``center``)."""
    from scipy.io import savemat

    m = np.asarray(matrix_lps, dtype=float)
    c = np.asarray(center, dtype=float)
    a = m[:3, :3]
    translation = m[:3, 3] - c + a @ c  # ITK: y = A (x - c) + c + t
    params = np.concatenate([a.ravel(), translation])[:, None]
    savemat(str(path), {ITK_AFFINE: params, "fixed": c[:, None]}, format="4")


def read_affine(path) -> tuple[np.ndarray, np.ndarray]:
    """(parameters (12,), fixed parameters (3,)) of an ITK affine ``.mat`` file, as ITK stores them."""
    from scipy.io import loadmat

    mat = loadmat(str(path))
    key = ITK_AFFINE if ITK_AFFINE in mat else ITK_AFFINE_FLOAT
    if key not in mat:
        raise ValueError(f"{path}: not an ITK 3-D affine transform (variables {sorted(mat)})")
    return np.asarray(mat[key], dtype=float).ravel(), np.asarray(mat["fixed"], dtype=float).ravel()
