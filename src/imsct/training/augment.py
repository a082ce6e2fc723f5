"""On-the-fly spatial augmentation as in the paper (section 2.4.1, Table 3) and ivadomed 2.6.1's
``RandomAffine`` (degrees 5, scale [0.1, 0.1, 0], translate [0.03, 0.03, 0] on sagittal images):

- rotation by up to +-``rotation_deg`` about ONE randomly chosen axis (ivadomed samples the plane of
  rotation among the three axis pairs);
- scaling by up to +-``scale``, drawn independently for the superior-inferior and anterior-posterior
  axes (the sagittal plane), none right-left;
- translation by up to +-``translation`` of the crop's extent, superior-inferior and
  anterior-posterior only.

As ivadomed's ``MRI3DSubVolumeSegmentationDataset``: every patch sample draws a fresh random affine,
applies it to the whole crop (image and labels alike), then cuts its window; :func:`augment_windows`
does exactly that but only resamples the window's voxels (the crop-wide sampling grid, sliced). The
transform is built in millimetres (voxel spacing included, so a rotation is a rotation on the
anisotropic 1x1x2 mm grid) and applied with torch's ``affine_grid``/``grid_sample`` (what torchio and
MONAI use underneath) so it runs on the training device without another dependency; labels are
resampled linearly and thresholded at 0.5, like the masks in preprocessing.

Not in the paper (section 4.5.2 names it as future work): :func:`drop_modality` zeroes the T1w channel of
a share of the samples, so one tumor model also serves patients without a gadolinium T1w.

Not in the paper either: :func:`mirror_samples` flips a sample (input and targets alike) along each
chosen axis with probability 0.5, nnU-Net's mirroring, the training counterpart of mirror test-time
augmentation (``inference.tta``).

Not in the paper either: :func:`jitter_intensity` scales and shifts each input channel of a sample on
its own (nnU-Net's contrast and brightness augmentation), so that a model trained on phantoms does not
depend on where the z-scoring of one scanner's images puts each tissue.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# array axes: 0 = x right-left, 1 = y anterior-posterior, 2 = z superior-inferior
SAGITTAL_AXES = (1, 2)


def _rotation(axis: int, angle: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(angle), torch.sin(angle)
    r = torch.eye(3, dtype=torch.float64)
    i, j = [a for a in range(3) if a != axis]
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def random_affine_mm(n: int, generator: torch.Generator, rotation_deg=5.0, scale=0.10, translation=0.03,
                     extent_mm=(1.0, 1.0, 1.0)) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """``n`` random transforms in millimetres about the crop centre, array axis order: matrices
    (n, 3, 3), translations (n, 3) and the rotation axis of each."""
    def u(*shape):
        return torch.rand(*shape, generator=generator, dtype=torch.float64) * 2 - 1

    axes = torch.randint(0, 3, (n,), generator=generator).tolist()
    angles = u(n) * math.radians(rotation_deg)
    factors = torch.ones(n, 3, dtype=torch.float64)
    shifts = torch.zeros(n, 3, dtype=torch.float64)
    plane = list(SAGITTAL_AXES)
    factors[:, plane] = 1 + u(n, 2) * scale
    shifts[:, plane] = u(n, 2) * translation * torch.tensor([extent_mm[a] for a in plane], dtype=torch.float64)
    mats = torch.stack([_rotation(a, t) @ torch.diag(f) for a, t, f in zip(axes, angles, factors)])
    return mats, shifts, axes


def theta_from_mm(mats: torch.Tensor, shifts: torch.Tensor, shape, spacing) -> torch.Tensor:
    """``affine_grid`` matrices (n, 3, 4) for output->input maps given in mm about the centre.

    Normalised coordinate u_k spans the half extent h_k = n_k * s_k / 2 mm, and affine_grid orders
    coordinates (last axis, ..., first axis)."""
    h = torch.tensor([n * s / 2 for n, s in zip(shape, spacing)], dtype=torch.float64)
    m = mats / h[None, :, None] * h[None, None, :]  # H^-1 A H
    t = shifts / h[None, :]
    rev = [2, 1, 0]
    return torch.cat([m[:, rev][:, :, rev], t[:, rev, None]], 2)


def augment_windows(x: torch.Tensor, y: torch.Tensor, windows, generator: torch.Generator,
                    spacing=(2.0, 1.0, 1.0), rotation_deg=5.0, scale=0.10, translation=0.03):
    """One sample per window of crop ``x`` (C, X, Y, Z) / ``y`` (K, X, Y, Z): a fresh random affine of
    the whole crop (about its centre, translation relative to its extent), sampled on the window only.
    Equal to transforming the crop and cutting the window, at the cost of the window."""
    shape = tuple(x.shape[1:])
    extent = [n * s for n, s in zip(shape, spacing)]
    mats, shifts, _ = random_affine_mm(len(windows), generator, rotation_deg, scale, translation, extent)
    theta = theta_from_mm(mats, shifts, shape, spacing).to(device=x.device, dtype=torch.float32)
    src = torch.cat([x.float(), y.float()])[None]
    out = []
    for t, w in zip(theta, windows):
        grid = F.affine_grid(t[None], [1, 1, *shape], align_corners=False)[(slice(None),) + tuple(w)]
        s = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
        out.append((s[:x.shape[0]].to(x.dtype), (s[x.shape[0]:] >= 0.5).to(y.dtype)))
    return out


def drop_modality(samples: list, probability: float, generator: torch.Generator, channel: int = 1) -> list:
    """Modality dropout: each sample's input ``channel`` (the T1w) set to 0 with ``probability``,
    targets and the other channels untouched. The inputs are z-scored, so 0 is the channel's mean:
    what inference feeds the tumor model when a subject has no T1w. Draws nothing at probability 0, so
    the published recipe's random stream (and its checkpoints) stay as they were."""
    if probability <= 0 or not samples:
        return samples
    drop = (torch.rand(len(samples), generator=generator) < probability).tolist()
    out = []
    for (x, y), d in zip(samples, drop):
        if d:
            x = x.clone()
            x[channel] = 0
        out.append((x, y))
    return out


MIRROR_AXES = {"rl": 0, "ap": 1, "si": 2}  # config names -> array axes


def mirror_samples(samples: list, axes, generator: torch.Generator) -> list:
    """Each sample (input and targets alike) flipped along each of ``axes`` (names of
    :data:`MIRROR_AXES`) with probability 0.5, drawn per sample and axis. Draws nothing when ``axes`` is
    empty (the paper), so the published recipe's random stream stays as it was."""
    axes = [MIRROR_AXES[a] for a in axes]
    if not axes or not samples:
        return samples
    flip = (torch.rand(len(samples), len(axes), generator=generator) < 0.5).tolist()
    out = []
    for (x, y), f in zip(samples, flip):
        dims = [a + 1 for a, on in zip(axes, f) if on]  # +1: the channel axis comes first
        out.append((x.flip(dims), y.flip(dims)) if dims else (x, y))
    return out


def jitter_intensity(samples: list, contrast: float, brightness: float, generator: torch.Generator) -> list:
    """Each sample's input channels, each on its own, times a factor drawn log-uniformly in
    [1 / (1 + contrast), 1 + contrast] plus a shift drawn in [-brightness, brightness] (z units; the
    inputs are z-scored). Targets untouched. Draws nothing when both are 0 (the paper), so the published
    recipe's random stream stays as it was. Tried against the 1.5-2x higher z of the lesions in implanted
    real scans than in the phantoms: it did not close that gap (README, Results), so the demo leaves it off."""
    if (contrast <= 0 and brightness <= 0) or not samples:
        return samples
    n, c = len(samples), samples[0][0].shape[0]
    factor = torch.exp((torch.rand(n, c, generator=generator) * 2 - 1) * math.log1p(contrast))
    shift = (torch.rand(n, c, generator=generator) * 2 - 1) * brightness
    out = []
    for (x, y), f, b in zip(samples, factor, shift):
        f, b = (v.to(device=x.device, dtype=x.dtype).view(-1, *([1] * (x.ndim - 1))) for v in (f, b))
        out.append((x * f + b, y))
    return out
