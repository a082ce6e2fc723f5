"""The modified 3D U-Net of Isensee et al. 2017 (BraTS), used by Lemay et al. 2021 for both models.

Differences from the original 3D U-Net (paper section 2.4): pre-activation residual context modules,
instance normalisation, leaky ReLU, dropout, upsampling + localisation modules, and deep supervision
(segmentation layers at several decoder levels, upsampled and summed). Sigmoid outputs, so the
whole-tumor class may overlap the others. Inputs of any size are padded internally to a multiple of
2**(depth-1) and the output cropped back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _norm_act(ch: int) -> list[nn.Module]:
    return [nn.InstanceNorm3d(ch, affine=True), nn.LeakyReLU(0.01, inplace=True)]


class ContextModule(nn.Module):
    """Pre-activation residual block: (IN, LReLU, conv3) -> dropout -> (IN, LReLU, conv3), + input."""

    def __init__(self, ch: int, dropout: float):
        super().__init__()
        self.body = nn.Sequential(
            *_norm_act(ch), nn.Conv3d(ch, ch, 3, padding=1, bias=False),
            nn.Dropout3d(dropout),
            *_norm_act(ch), nn.Conv3d(ch, ch, 3, padding=1, bias=False),
        )

    def forward(self, x):
        return x + self.body(x)


class UpsamplingModule(nn.Module):
    """x2 trilinear upsampling, then conv3 halving the features."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv3d(cin, cout, 3, padding=1, bias=False), *_norm_act(cout))

    def forward(self, x, size):
        return self.conv(F.interpolate(x, size=size, mode="trilinear", align_corners=False))


class LocalisationModule(nn.Module):
    """conv3 on the concatenation, then conv1 halving the features."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv3d(cin, cin // 2, 3, padding=1, bias=False), *_norm_act(cin // 2),
            nn.Conv3d(cin // 2, cout, 1, bias=False), *_norm_act(cout),
        )

    def forward(self, x):
        return self.body(x)


class ModifiedUNet3D(nn.Module):
    def __init__(self, in_channels: int = 1, out_channels: int = 1, base_filters: int = 8, depth: int = 4,
                 dropout: float = 0.3, deep_supervision_levels: int = 3):
        super().__init__()
        if depth < 2:
            raise ValueError("depth must be at least 2")
        self.depth = depth
        f = [base_filters * 2**i for i in range(depth)]
        self.stem = nn.Conv3d(in_channels, f[0], 3, padding=1, bias=False)
        self.down = nn.ModuleList([nn.Identity()] + [nn.Conv3d(f[i - 1], f[i], 3, stride=2, padding=1, bias=False)
                                                     for i in range(1, depth)])
        self.context = nn.ModuleList([ContextModule(c, dropout) for c in f])
        self.up = nn.ModuleList([UpsamplingModule(f[i], f[i - 1]) for i in range(depth - 1, 0, -1)])
        # decoder levels depth-2 .. 0; the last (full resolution) one ends with a conv3 instead
        self.local = nn.ModuleList([LocalisationModule(2 * f[i], f[i]) for i in range(depth - 2, 0, -1)])
        self.final = nn.Sequential(nn.Conv3d(2 * f[0], 2 * f[0], 3, padding=1, bias=False), *_norm_act(2 * f[0]))
        n_ds = max(1, min(deep_supervision_levels, depth - 1))
        self.seg_levels = list(range(n_ds - 1, 0, -1))  # decoder levels (by resolution index) with a seg layer
        self.seg = nn.ModuleDict({str(i): nn.Conv3d(f[i], out_channels, 1) for i in self.seg_levels})
        self.seg_final = nn.Conv3d(2 * f[0], out_channels, 1)

    @property
    def size_multiple(self) -> int:
        """Spatial sizes the core network takes without padding."""
        return 2 ** (self.depth - 1)

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[2:]
        pad = [(-s) % self.size_multiple for s in size]
        if any(pad):
            x = F.pad(x, [p for s in reversed(pad) for p in (0, s)])
        out = self.core_logits(x)
        if any(pad):
            out = out[(...,) + tuple(slice(0, s) for s in size)]
        return out

    def core_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for inputs whose spatial sizes are multiples of :attr:`size_multiple` (the part that
        is exported to ONNX; padding is done by the caller there)."""
        skips = []
        h = self.stem(x)
        for i in range(self.depth):
            if i:
                h = self.down[i](h)
            h = self.context[i](h)
            skips.append(h)
        ds = None
        for k, i in enumerate(range(self.depth - 2, -1, -1)):  # decoder, from coarse to fine
            h = self.up[k](h, skips[i].shape[2:])
            h = torch.cat([skips[i], h], dim=1)
            if i == 0:
                h = self.final(h)
                out = self.seg_final(h)
            else:
                h = self.local[k](h)
                out = self.seg[str(i)](h) if str(i) in self.seg else None
            if out is not None:
                ds = out if ds is None else out + F.interpolate(ds, size=out.shape[2:], mode="trilinear", align_corners=False)
        return ds

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.forward_logits(x))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
