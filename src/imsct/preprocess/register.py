"""T1w-to-T2w registration (paper section 2.2) with a QC gate and a disc-label fallback.

Scheme, measured on the real pair in ``shared/data/sct_testing_data`` (see the benchmarks):
Mattes mutual information, rigid then affine, multi-resolution with smoothing in mm (the slices are
thick), started from the scanner alignment in the headers (identity; a centre-of-mass start fails
because the two fields of view differ). Neighbourhood cross-correlation, the paper's metric, reached
the same cord Dice at much higher cost (figures in the README), so it is not used. One ITK thread
and a fixed sampling seed make the result reproducible to the bit (multi-threaded metric sums are
not); ITK reads its thread count once per process, so it is set process-wide on import
(``IMSCT_ITK_THREADS``, see :mod:`imsct.preprocess`), not per call.

The QC gate compares a similarity score (normalised mutual information on the same voxels) before and
after, and checks that the transform is a plausible patient motion; a failed result falls back to a
landmark transform from disc labels refined by intensity, and else to the scanner alignment, flagged.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from . import ITK_THREADS
from .transforms import decompose, landmark_transform, matrix_from_itk, point_labels, resample_to

log = logging.getLogger(__name__)


@dataclass
class RegistrationParams:
    seed: int = 42
    bins: int = 32
    sampling: float = 0.25  # fraction of fixed voxels sampled by the metric...
    max_samples: int = 40000  # ...but no more than this many (keeps large images fast)
    # Iterations: on the real pair and full-size phantoms, (100, 50, 20) + (30, 15) give the same cord
    # Dice and disc errors as 3x more, faster (`python benchmarks/run.py` prints the figures).
    rigid_iterations: tuple[int, ...] = (100, 50, 20)
    rigid_shrink: tuple[int, ...] = (4, 2, 1)
    rigid_smooth_mm: tuple[float, ...] = (2, 1, 0)
    affine_iterations: tuple[int, ...] = (30, 15)
    affine_shrink: tuple[int, ...] = (2, 1)
    affine_smooth_mm: tuple[float, ...] = (1, 0)
    # QC gate: plausible patient motion between two scans of one session, and a similarity gain.
    max_rotation_deg: float = 10.0
    max_displacement_mm: float = 20.0
    scale_range: tuple[float, float] = (0.9, 1.1)
    max_shear: float = 0.08
    min_gain: float = 0.002  # NMI must improve by at least this much over the scanner alignment
    max_disc_error_mm: float = 3.0  # when both images have disc labels, they must agree this well
    working_spacing_mm: float = 1.0  # register on grids no finer than this

    @classmethod
    def from_config(cls, registration: dict) -> RegistrationParams:
        """From the config's ``preprocess.registration`` section (``use_discs`` decides which inputs a
        job gets, not how it registers)."""
        return cls(**{k: v for k, v in registration.items() if k != "use_discs"})


@dataclass
class RegistrationResult:
    matrix: np.ndarray  # fixed -> moving, RAS mm
    method: str  # intensity | discs+intensity | discs | scanner
    flagged: bool  # True when the intensity registration failed the gate
    qc: dict = field(default_factory=dict)


def to_ants(data: np.ndarray, affine: np.ndarray):
    """An ITK image (held by ANTs' compiled library) from an array and its NIfTI (RAS) affine, so
    ANTs sees exactly the grid nibabel sees (no qform/sform ambiguity)."""
    from .antslib import Image

    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    flip = np.diag([-1.0, -1.0, 1.0])
    direction = flip @ affine[:3, :3] / spacing
    return Image(np.asarray(data, dtype=np.float32), flip @ affine[:3, 3], spacing, direction)


def _stage(kind, metric, iters, shrink, smooth):
    return ["--transform", f"{kind}[0.1]", "--metric", metric,
            "--convergence", f"[{'x'.join(map(str, iters))},1e-6,10]",
            "--shrink-factors", "x".join(map(str, shrink)),
            "--smoothing-sigmas", "x".join(f"{s:g}" for s in smooth) + "mm"]


def intensity_registration(fixed, moving, params: RegistrationParams, init: np.ndarray | None = None,
                           stage: str = "rigid") -> np.ndarray:
    """One Mattes-MI stage (``rigid`` or ``affine``) of antsRegistration (antspyx's compiled library),
    from ``init`` (default: the scanner alignment). ``fixed``/``moving`` are :func:`to_ants` images.
    Returns the fixed -> moving RAS matrix."""
    from . import antslib
    from .transforms import write_itk

    with tempfile.TemporaryDirectory(prefix="imsct-reg-") as tmp:
        prefix = str(Path(tmp) / "reg_")
        if init is None:
            init_arg = "Identity"
        else:
            init_arg = str(Path(tmp) / "init.mat")
            write_itk(init, init_arg)
        rate = min(params.sampling, params.max_samples / float(np.prod(fixed.shape)))
        metric = f"MI[{fixed.ptr()},{moving.ptr()},1,{params.bins},Regular,{rate:.5f}]"
        args = ["--dimensionality", "3", "--float", "1", "--output", prefix,
                "--interpolation", "Linear", "--winsorize-image-intensities", "[0.005,0.995]",
                "--use-histogram-matching", "0", "--initial-moving-transform", init_arg,
                "--collapse-output-transforms", "1", "--random-seed", str(params.seed)]
        if stage == "rigid":
            args += _stage("Rigid", metric, params.rigid_iterations, params.rigid_shrink, params.rigid_smooth_mm)
        else:
            args += _stage("Affine", metric, params.affine_iterations, params.affine_shrink, params.affine_smooth_mm)
        antslib.registration(args)
        return matrix_from_itk(*antslib.read_affine(prefix + "0GenericAffine.mat"))


def nmi(a: np.ndarray, b: np.ndarray, bins: int = 32) -> float:
    """Normalised mutual information (H(A) + H(B)) / H(A, B), in [1, 2]. Written out because the
    gate needs it on an explicit voxel set (the same voxels before and after), which the library
    metrics do not take."""
    if a.size < 100:
        return float("nan")
    ra = np.percentile(a, [1, 99])
    rb = np.percentile(b, [1, 99])
    if ra[1] <= ra[0] or rb[1] <= rb[0]:
        return float("nan")
    h, _, _ = np.histogram2d(np.clip(a, *ra), np.clip(b, *rb), bins=bins, range=[ra, rb])
    p = h / h.sum()
    px, py = p.sum(1), p.sum(0)

    def ent(q):
        q = q[q > 0]
        return -np.sum(q * np.log(q))

    return float((ent(px) + ent(py)) / ent(p.ravel()))


class Scorer:
    """NMI of fixed vs. moving-through-a-transform, always on the voxels that every scored transform
    keeps inside the moving field of view (so scores compare)."""

    def __init__(self, fixed: nib.Nifti1Image, moving: nib.Nifti1Image, bins: int):
        self.fixed, self.moving, self.bins = fixed, moving, bins
        self.f = np.asarray(fixed.dataobj, dtype=np.float32)
        self.m = np.asarray(moving.dataobj, dtype=np.float32)
        self.ones = np.ones(self.m.shape, np.float32)

    def _footprint(self, matrix):
        return resample_to(self.ones, self.moving.affine, self.f.shape, self.fixed.affine, matrix, order=0) > 0.5

    def scores(self, matrices: dict[str, np.ndarray]) -> dict[str, float]:
        common = np.ones(self.f.shape, bool)
        for m in matrices.values():
            common &= self._footprint(m)
        common &= self.f > np.percentile(self.f, 5)  # leave out air, which matches anything
        out = {}
        for name, m in matrices.items():
            moved = resample_to(self.m, self.moving.affine, self.f.shape, self.fixed.affine, m)
            out[name] = nmi(self.f[common], moved[common], self.bins)
        out["n_voxels"] = int(common.sum())
        return out


def plausible(matrix: np.ndarray, center: np.ndarray, p: RegistrationParams) -> tuple[bool, dict, list[str]]:
    parts = decompose(matrix, center)
    why = []
    if parts.rotation_deg > p.max_rotation_deg:
        why.append(f"rotation {parts.rotation_deg:.1f} deg > {p.max_rotation_deg}")
    if parts.displacement_mm > p.max_displacement_mm:
        why.append(f"displacement {parts.displacement_mm:.1f} mm > {p.max_displacement_mm}")
    if min(parts.scales) < p.scale_range[0] or max(parts.scales) > p.scale_range[1]:
        why.append(f"scales {np.round(parts.scales, 3).tolist()} outside {list(p.scale_range)}")
    if parts.shear > p.max_shear:
        why.append(f"shear {parts.shear:.3f} > {p.max_shear}")
    return not why, parts.to_dict(), why


def working_image(img: nib.Nifti1Image, min_spacing: float = 1.0) -> nib.Nifti1Image:
    """The image on a grid no finer than ``min_spacing`` mm (same orientation and extent), smoothed
    before sampling. The paper registered at 1x1x2 mm; sub-millimetre in-plane grids only slow the
    metric down (many times slower on full-size phantoms at native resolution)."""
    from scipy.ndimage import gaussian_filter, zoom

    data = np.asarray(img.dataobj, dtype=np.float32)
    spacing = np.sqrt((img.affine[:3, :3] ** 2).sum(axis=0))
    factors = np.minimum(1.0, spacing / min_spacing)
    if np.all(factors > 0.95):
        return nib.Nifti1Image(data, img.affine)
    sigma = np.where(factors < 1, 0.5 * (1 / factors - 1) ** 0.5 * 1.2, 0)
    small = zoom(gaussian_filter(data, sigma), factors, order=1)
    # scipy's zoom maps output index o to input index o * (n_in - 1) / (n_out - 1)
    scale = (np.asarray(data.shape) - 1) / np.maximum(np.asarray(small.shape) - 1, 1)
    aff = img.affine.copy()
    aff[:3, :3] = img.affine[:3, :3] @ np.diag(scale)
    return nib.Nifti1Image(small, aff)


def disc_agreement(matrix: np.ndarray, fpts: dict, mpts: dict) -> float | None:
    """Mean distance (mm) between the moving-image disc labels and the fixed-image ones mapped through
    ``matrix``; None without shared labels."""
    shared = sorted(set(fpts) & set(mpts))
    if not shared:
        return None
    return float(np.mean([np.linalg.norm(matrix[:3, :3] @ fpts[k] + matrix[:3, 3] - mpts[k]) for k in shared]))


def register(fixed: nib.Nifti1Image, moving: nib.Nifti1Image, fixed_discs: nib.Nifti1Image | None = None,
             moving_discs: nib.Nifti1Image | None = None,
             params: RegistrationParams | None = None) -> RegistrationResult:
    """Register ``moving`` (T1w) onto ``fixed`` (T2w); see the module docstring for the scheme.

    With disc labels in both images the gate also requires the result to agree with them
    (``max_disc_error_mm``), which catches the one failure the similarity score cannot see: locking
    onto a neighbouring vertebral level."""
    p = params or RegistrationParams()
    t0 = time.perf_counter()
    wf, wm = working_image(fixed, p.working_spacing_mm), working_image(moving, p.working_spacing_mm)
    fx, mv = to_ants(wf.dataobj, wf.affine), to_ants(wm.dataobj, wm.affine)
    center = fixed.affine[:3, :3] @ ((np.asarray(fixed.shape[:3]) - 1) / 2) + fixed.affine[:3, 3]
    scorer = Scorer(wf, wm, p.bins)
    fpts = point_labels(np.asarray(fixed_discs.dataobj), fixed_discs.affine) if fixed_discs is not None else {}
    mpts = point_labels(np.asarray(moving_discs.dataobj), moving_discs.affine) if moving_discs is not None else {}
    ident = np.eye(4)
    qc: dict = {"params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(p).items()},
                "itk_threads": ITK_THREADS, "shared_discs": sorted(set(fpts) & set(mpts))}

    m_rigid = intensity_registration(fx, mv, p, None, "rigid")
    m_aff = intensity_registration(fx, mv, p, m_rigid, "affine")
    s = scorer.scores({"scanner": ident, "rigid": m_rigid, "affine": m_aff})
    qc["scanner"] = {"score": s["scanner"], "disc_error_mm": disc_agreement(ident, fpts, mpts)}
    below = ("affine scores below rigid",) if s["affine"] < s["rigid"] - 1e-4 else ()
    reasons = {"affine": gate(m_aff, s["affine"] - s["scanner"], center, p, fpts, mpts, qc, "affine", s["affine"],
                              why=below),
               "rigid": gate(m_rigid, s["rigid"] - s["scanner"], center, p, fpts, mpts, qc, "rigid", s["rigid"])}
    qc["gate_passed"] = not reasons["affine"] or not reasons["rigid"]
    # why the intensity results preferred to the one used were rejected (both, when both were)
    rejected = [] if not reasons["affine"] else ["affine"] if not reasons["rigid"] else ["affine", "rigid"]
    qc["gate_reasons"] = [f"{k}: {w}" for k in rejected for w in reasons[k]]
    if not reasons["affine"]:
        result = RegistrationResult(m_aff, "intensity", False)
    elif not reasons["rigid"]:
        result = RegistrationResult(m_rigid, "intensity-rigid", False)
    else:
        log.warning("intensity registration failed the QC gate: %s", "; ".join(qc["gate_reasons"]))
        result = _fallback(fpts, mpts, fx, mv, scorer, center, p, qc)
    result.qc = {**qc, **result.qc}
    result.qc.update({"method": result.method, "flagged": result.flagged,
                      "transform_ras": result.matrix.round(6).tolist(),
                      "transform": decompose(result.matrix, center).to_dict(),
                      "disc_error_mm": disc_agreement(result.matrix, fpts, mpts),
                      "seconds": round(time.perf_counter() - t0, 3)})
    return result


def gate(m, gain, center, p: RegistrationParams, fpts, mpts, qc, name, score, start=None,
         why: tuple[str, ...] = ()) -> list[str]:
    """Reasons to reject a transform (empty = accepted): ``why`` (the caller's own) and the gate's;
    records them all, with the checks, in ``qc[name]``. The motion is judged relative to ``start``
    (default: the scanner alignment)."""
    if start is None:
        _, parts, found = plausible(m, center, p)
    else:
        _, parts, found = plausible(m @ np.linalg.inv(start), start[:3, :3] @ center + start[:3, 3], p)
    why = [*why, *found]
    if not gain >= p.min_gain:
        why.append(f"similarity gain {gain:.4f} < {p.min_gain}")
    disc_err = disc_agreement(m, fpts, mpts)
    if disc_err is not None and disc_err > p.max_disc_error_mm:
        why.append(f"disc labels {disc_err:.1f} mm apart > {p.max_disc_error_mm}")
    qc[name] = {"score": score, "gain": gain, "disc_error_mm": disc_err, "passed": not why, "why": list(why), **parts}
    return why


def _fallback(fpts, mpts, fx, mv, scorer, center, p, qc) -> RegistrationResult:
    """Disc landmarks, refined by intensity when the refinement passes the gate; else the scanner
    alignment. Always flagged."""
    ident = np.eye(4)
    m_lm, kind, shared = landmark_transform(fpts, mpts)
    if m_lm is None:
        qc["fallback"] = {"discs": False, "why": kind if (fpts and mpts) else "no disc labels"}
        return RegistrationResult(ident, "scanner", True)
    m_rigid = intensity_registration(fx, mv, p, m_lm, "rigid")
    m_aff = intensity_registration(fx, mv, p, m_rigid, "affine")
    s = scorer.scores({"scanner": ident, "discs": m_lm, "rigid": m_rigid, "affine": m_aff})
    fb = {"discs": True, "kind": kind, "shared": shared, "landmark_error_mm": disc_agreement(m_lm, fpts, mpts),
          "scores": s}
    qc["fallback"] = fb
    for name, m, method in (("affine", m_aff, "discs+intensity"), ("rigid", m_rigid, "discs+intensity-rigid")):
        # the refinement may not wander from the landmarks: same gate, motion measured from them
        why = gate(m, s[name] - s["discs"] + p.min_gain, center, p, fpts, mpts, fb, name, s[name], start=m_lm)
        if not why:
            return RegistrationResult(m, method, True)
    if fb["landmark_error_mm"] <= p.max_disc_error_mm:
        return RegistrationResult(m_lm, "discs", True)
    return RegistrationResult(ident, "scanner", True)


def register_files(fixed_path, moving_path, out_path, fixed_discs=None, moving_discs=None,
                   transform_path=None, qc_path=None, params: RegistrationParams | None = None) -> RegistrationResult:
    """File-level entry point used by the CLI and the workflow: loads and checks the inputs, writes the
    moved image on the fixed grid, the ITK transform and the QC JSON (all atomically)."""
    from ..io import load_image, load_scan, save_nifti, write_json
    from .transforms import write_itk

    fixed = load_scan(fixed_path)
    moving = load_scan(moving_path)
    fd = load_image(fixed_discs) if fixed_discs else None
    md = load_image(moving_discs) if moving_discs else None
    res = register(fixed, moving, fd, md, params)
    moved = resample_to(np.asarray(moving.dataobj), moving.affine, fixed.shape, fixed.affine, res.matrix)
    save_nifti(moved.astype(np.float32), fixed.affine, out_path)
    if transform_path:
        write_itk(res.matrix, transform_path)
    if qc_path:
        write_json({"fixed": str(fixed_path), "moving": str(moving_path), **res.qc}, qc_path)
    return res
