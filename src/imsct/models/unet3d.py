"""The modified 3D U-Net of Isensee et al. 2017 (BraTS) as implemented by ivadomed 2.6.1
(``Modified3DUNet``), the network of both models in Lemay et al. 2021.

Layer for layer the published topology: a residual context module per level (the first level's is
``conv3 -> lrelu -> conv3 -> dropout -> lrelu -> conv3``, deeper levels' are a stride-2 ``conv3`` then
the *same* ``IN -> lrelu -> conv3`` block applied twice around a dropout, as in ivadomed), instance
normalisation without affine parameters, leaky ReLU, convolutions without bias, nearest-neighbour
x2 upsampling followed by a ``conv3``, localisation modules (``conv3`` on the concatenation, then a
``conv1`` halving the features) and deep supervision: ``conv1`` segmentation layers on the decoder
levels at 1/4 and 1/2 resolution, upsampled and summed into the full-resolution output. Sigmoid
outputs, so the whole-tumor class may overlap the others.

``downsamplings`` counts the stride-2 convolutions: ivadomed's network always has four (the paper's
"depth 4", Table 3); other values build the same pattern with fewer or more levels. ivadomed 2.6.1
gives a multiclass model one extra output channel that it drops after the sigmoid (an untrained
"background"); imsct leaves it out, which changes no output (224 fewer weights for the tumor model).
Inputs of any size are padded internally to a multiple of ``2**downsamplings`` and the output cropped
back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PUBLISHED_DOWNSAMPLINGS = 4


def _norm_act(ch: int) -> list[nn.Module]:
    return [nn.InstanceNorm3d(ch), nn.LeakyReLU()]


class Conv3d(nn.Conv3d):
    """``nn.Conv3d`` (same weights, same state-dict keys) that, under CPU bfloat16 autocast, runs in
    fp32 where the input's first spatial size is 2, as at the bottom of every U-Net here (right-left
    patches of 2 x 2**downsamplings voxels). There oneDNN's bf16 weight gradient of a 3x3x3
    convolution is wrong in torch 2.13 (relative error about 1, at times inf; forward and input
    gradient are right): the demo's cord model diverged to NaN in its first epoch. Such a level is
    the network's cheapest, so fp32 costs little there (``tests/test_training.py`` checks every
    convolution's bf16 weight gradient)."""

    def forward(self, x):
        if torch.is_autocast_enabled("cpu") and x.device.type == "cpu" and x.shape[2] == 2:
            with torch.autocast("cpu", enabled=False):
                return super().forward(x.float())
        return super().forward(x)


def _conv3(cin: int, cout: int, stride: int = 1) -> nn.Conv3d:
    return Conv3d(cin, cout, 3, stride=stride, padding=1, bias=False)


def _conv1(cin: int, cout: int) -> nn.Conv3d:
    return Conv3d(cin, cout, 1, bias=False)


def upsample2(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour x2 upsampling of a 5-D tensor. In an ONNX export it is written as
    broadcast + reshape, which gives the same values but runs in ONNX Runtime far faster than its 5-D
    ``Resize`` kernel (``benchmarks/run.py`` times the networks); in PyTorch ``interpolate`` is kept,
    being the faster one there (its backward above all)."""
    if torch.onnx.is_in_onnx_export():
        n, c, d, h, w = x.shape
        return x[:, :, :, None, :, None, :, None].expand(n, c, d, 2, h, 2, w, 2).reshape(n, c, 2 * d, 2 * h, 2 * w)
    return F.interpolate(x, scale_factor=2, mode="nearest")


class FirstContext(nn.Module):
    """Level 0: conv3 (the residual), lrelu, conv3, dropout, lrelu, conv3, + residual, lrelu. Returns the
    skip connection (before the normalisation) and the normalised output."""

    def __init__(self, cin: int, ch: int, dropout: float):
        super().__init__()
        self.conv_in = _conv3(cin, ch)
        self.conv_a = _conv3(ch, ch)
        self.drop = nn.Dropout3d(dropout)
        self.conv_b = nn.Sequential(nn.LeakyReLU(), _conv3(ch, ch))
        self.norm = nn.Sequential(*_norm_act(ch))
        self.act = nn.LeakyReLU()

    def forward(self, x):
        res = self.conv_in(x)
        out = self.conv_b(self.drop(self.conv_a(self.act(res)))) + res
        skip = self.act(out)
        return skip, self.norm(skip)


class DownContext(nn.Module):
    """Levels 1..n: stride-2 conv3 (the residual), then one IN-lrelu-conv3 block applied twice around a
    dropout (shared weights, as in ivadomed), + residual; normalised unless it is the bottom level."""

    def __init__(self, cin: int, ch: int, dropout: float, bottom: bool):
        super().__init__()
        self.down = _conv3(cin, ch, stride=2)
        self.block = nn.Sequential(*_norm_act(ch), _conv3(ch, ch))
        self.drop = nn.Dropout3d(dropout)
        self.norm = nn.Identity() if bottom else nn.Sequential(*_norm_act(ch))

    def forward(self, x):
        res = self.down(x)
        out = self.block(self.drop(self.block(res))) + res
        return self.norm(out)


class Upsampling(nn.Module):
    """IN, lrelu, nearest x2 upsampling, conv3 halving the features, IN, lrelu."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.pre = nn.Sequential(*_norm_act(cin))
        self.post = nn.Sequential(_conv3(cin, cout), *_norm_act(cout))

    def forward(self, x):
        return self.post(upsample2(self.pre(x)))


class ModifiedUNet3D(nn.Module):
    def __init__(self, in_channels: int = 1, out_channels: int = 1, base_filters: int = 8,
                 downsamplings: int = PUBLISHED_DOWNSAMPLINGS, dropout: float = 0.3):
        super().__init__()
        if downsamplings < 1:
            raise ValueError("downsamplings must be at least 1")
        n = downsamplings
        self.downsamplings = n
        f = [base_filters * 2**i for i in range(n + 1)]
        self.first = FirstContext(in_channels, f[0], dropout)
        self.context = nn.ModuleList([DownContext(f[i - 1], f[i], dropout, bottom=i == n) for i in range(1, n + 1)])
        # bottom: upsample to level n-1, then conv1 + IN + lrelu (ivadomed's "level 0 localisation")
        self.bottom_up = Upsampling(f[n], f[n - 1])
        self.bottom_conv = nn.Sequential(_conv1(f[n - 1], f[n - 1]), *_norm_act(f[n - 1]))
        # decoder levels n-1 .. 1: conv3 on the concatenation (+IN, lrelu), conv1 halving, upsampling
        self.local = nn.ModuleList([nn.Sequential(_conv3(2 * f[i], 2 * f[i]), *_norm_act(2 * f[i]))
                                    for i in range(n - 1, 0, -1)])
        self.reduce = nn.ModuleList([_conv1(2 * f[i], f[i]) for i in range(n - 1, 0, -1)])
        self.up = nn.ModuleList([Upsampling(f[i], f[i - 1]) for i in range(n - 1, 0, -1)])
        # full resolution: conv3 on the concatenation, then the output conv1
        self.final = nn.Sequential(_conv3(2 * f[0], 2 * f[0]), *_norm_act(2 * f[0]))
        self.seg_final = _conv1(2 * f[0], out_channels)
        # deep supervision on the decoder levels at 1/4 and 1/2 resolution (those that exist)
        self.ds_levels = [i for i in (2, 1) if i <= n - 1]
        self.seg = nn.ModuleDict({str(i): _conv1(2 * f[i], out_channels) for i in self.ds_levels})

    @property
    def size_multiple(self) -> int:
        """Spatial sizes the core network takes without padding."""
        return 2**self.downsamplings

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
        skip0, h = self.first(x)
        skips = [skip0]
        for level in self.context:
            h = level(h)
            skips.append(h)
        n = self.downsamplings
        h = self.bottom_conv(self.bottom_up(skips[n]))
        ds = None
        for k, i in enumerate(range(n - 1, 0, -1)):  # decoder, coarse to fine
            h = self.local[k](torch.cat([h, skips[i]], dim=1))
            if str(i) in self.seg:
                s = self.seg[str(i)](h)
                ds = s if ds is None else s + upsample2(ds)
            h = self.up[k](self.reduce[k](h))
        out = self.seg_final(self.final(torch.cat([skips[0], h], dim=1)))
        if ds is not None:
            out = out + upsample2(ds)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.forward_logits(x))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
