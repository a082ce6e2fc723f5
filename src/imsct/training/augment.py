"""On-the-fly spatial augmentation (paper Table 3): rotation +-5 deg, scaling +-10 %, translation
+-3 %, one random affine per sample applied to image and labels alike.

Written with torch's ``affine_grid``/``grid_sample`` (what torchio and MONAI use underneath) so it runs
batched on the training device without another dependency; labels are resampled linearly and
thresholded at 0.5, like the masks in preprocessing.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_affine(n: int, generator: torch.Generator, rotation_deg=5.0, scale=0.10, translation=0.03,
                  device="cpu") -> torch.Tensor:
    """(n, 3, 4) affine matrices in normalised coordinates."""
    def u(*shape):
        return torch.rand(*shape, generator=generator) * 2 - 1

    angles = u(n, 3) * math.radians(rotation_deg)
    cx, cy, cz = torch.cos(angles).unbind(1)
    sx, sy, sz = torch.sin(angles).unbind(1)
    one, zero = torch.ones(n), torch.zeros(n)
    rx = torch.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], 1).view(n, 3, 3)
    ry = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], 1).view(n, 3, 3)
    rz = torch.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], 1).view(n, 3, 3)
    s = torch.diag_embed(1 + u(n, 3) * scale)
    a = rz @ ry @ rx @ s
    t = u(n, 3, 1) * translation * 2  # normalised coordinates span 2
    return torch.cat([a, t], 2).to(device)


def augment(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator, **ranges) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply one random affine per sample to inputs ``x`` (N, C, D, H, W) and targets ``y``."""
    theta = random_affine(x.shape[0], generator, device=x.device, **ranges).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    xa = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    ya = F.grid_sample(y, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return xa, (ya >= 0.5).to(y.dtype)
