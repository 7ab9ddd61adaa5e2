"""Network building blocks of the 2D modules: residual blocks, the recursive hourglass, soft-argmax and
the KNEEL hourglass network (Tiulpin et al. 2019) that KneeLandmarks uses and FaceLandmarks' HG baseline
reuses.

Module names and tensor shapes of :class:`KneelHourglass` follow the authors' ``HourglassNet`` (KNEEL
repository, built on ``deep-pipeline`` 0.2.5) so that their released ``fold_*.pth`` state dicts load
unchanged (see ``KneeLandmarksLib.kneel_import``). One quirk is kept on purpose for that reason: their "1x1"
convolution blocks are 3x3 convolutions (padding 1).

``KneelHourglass(n_landmarks, width=24, depth=6, block='hmp'|'bottleneck', in_channels=1, dropout=0.25,
upsample='nearest'|'bilinear')`` (the paper says nearest; the authors' code and snapshots use bilinear),
``forward(x) -> (B, K, 2)`` normalised (x, y) coordinates in [0, 1) and
``heatmaps(x) -> (B, K, H/4, W/4)`` the logits before the soft-argmax.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from .settings import setting

BLOCKS = ("hmp", "bottleneck")
UPSAMPLING = ("nearest", "bilinear")


@dataclass
class HourglassSettings:
    """The arguments of :class:`KneelHourglass` with their allowed ranges (checked on model-file load)."""

    n_landmarks: int = setting(1, minimum=1, maximum=1000, help="output heatmaps")
    width: int = setting(24, minimum=1, maximum=256, help="N of the paper (channels N -> 8N)")
    depth: int = setting(6, minimum=1, maximum=8, help="pooling levels of the hourglass")
    block: str = setting("hmp", choices=BLOCKS, help="residual block")
    in_channels: int = setting(1, minimum=1, maximum=4, help="image channels")
    dropout: float = setting(0.25, minimum=0.0, maximum=1.0, help="dropout before the output")
    upsample: str = setting("nearest", choices=UPSAMPLING, help="upsampling of the lower branch")


def conv_bn(n_in: int, n_out: int, relu: bool) -> nn.Sequential:
    """3x3 convolution + batch norm (+ ReLU), the unit every residual block is made of."""
    layers: list[nn.Module] = [nn.Conv2d(n_in, n_out, kernel_size=3, padding=1), nn.BatchNorm2d(n_out)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def make_skip(n_in: int, n_out: int) -> nn.Module:
    return nn.Identity() if n_in == n_out else conv_bn(n_in, n_out, relu=False)


class BottleneckResidual(nn.Module):
    """Plain hourglass residual: reduce to n_out/2, 3x3, expand to n_out (for the ablation)."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.bottleneck = conv_bn(n_in, n_out // 2, relu=True)
        self.conv = conv_bn(n_out // 2, n_out // 2, relu=True)
        self.out = conv_bn(n_out // 2, n_out, relu=False)
        self.skip = make_skip(n_in, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.conv(self.bottleneck(x))) + self.skip(x)


class HMPResidual(nn.Module):
    """Hierarchical multi-scale parallel block (Bulat & Tzimiropoulos 2017): three chained 3x3
    convolutions with n/2, n/4, n/4 channels whose outputs are concatenated."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.scale1 = conv_bn(n_in, n_out // 2, relu=True)
        self.scale2 = conv_bn(n_out // 2, n_out // 4, relu=True)
        self.scale3 = conv_bn(n_out // 4, n_out - n_out // 4 - n_out // 2, relu=False)
        self.skip = make_skip(n_in, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o1 = self.scale1(x)
        o2 = self.scale2(o1)
        o3 = self.scale3(o2)
        return torch.cat([o1, o2, o3], 1) + self.skip(x)


def make_block(kind: str, n_in: int, n_out: int) -> nn.Module:
    return HMPResidual(n_in, n_out) if kind == "hmp" else BottleneckResidual(n_in, n_out)


class Hourglass(nn.Module):
    """Recursive hourglass: a pooled lower branch (recursing ``depth`` times) plus an upper branch
    at full resolution, merged after nearest-neighbour upsampling of the lower one."""

    def __init__(self, depth: int, width: int, n_in: int, n_out: int, block: str, upsample: str) -> None:
        super().__init__()
        self.upsample = upsample
        self.lower1 = make_block(block, n_in, width)
        self.lower2 = make_block(block, width, width)
        self.lower3 = make_block(block, width, width)
        if depth > 1:
            self.lower4 = Hourglass(depth - 1, width, width, n_out, block, upsample)
        else:
            self.lower4 = make_block(block, width, n_out)
        self.lower5 = make_block(block, n_out, n_out)
        self.upper1 = make_block(block, n_in, width)
        self.upper2 = make_block(block, width, width)
        self.upper3 = make_block(block, width, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.lower5(self.lower4(self.lower3(self.lower2(self.lower1(F.max_pool2d(x, 2))))))
        up = self.upper3(self.upper2(self.upper1(x)))
        if self.upsample == "nearest":
            return up + F.interpolate(low, size=x.shape[-2:], mode="nearest")
        return up + F.interpolate(low, size=x.shape[-2:], mode="bilinear", align_corners=True)


def soft_argmax(heatmaps: torch.Tensor, sharpness: float = 1.0) -> torch.Tensor:
    """(B, K, h, w) logits -> (B, K, 2) expected (x, y) in heatmap pixels (column j, row i) under
    softmax(sharpness * heatmaps) over each heatmap."""
    b, k, h, w = heatmaps.shape
    probs = F.softmax(sharpness * heatmaps.reshape(b, k, h * w), dim=2).reshape(b, k, h, w)
    xs = torch.arange(w, dtype=probs.dtype, device=probs.device)
    ys = torch.arange(h, dtype=probs.dtype, device=probs.device)
    return torch.stack([(probs.sum(2) * xs).sum(2), (probs.sum(3) * ys).sum(2)], dim=2)


class KneelHourglass(nn.Module):
    """KNEEL's single-hourglass landmark regressor (see the module docstring).

    ``width`` is N of the paper (channels grow N -> 2N -> 4N in the entry block, the hourglass
    runs at 4N with 8N outputs), ``depth`` is d (pooling levels; the input's side divided by 4
    should be at least 2**depth). Output heatmaps are at 1/4 of the input resolution; the
    heatmap cell (i, j) looks at input pixel (4i + 1, 4j + 1).
    """

    #: input pixels per heatmap cell and the input pixel a cell's centre sees (see class docstring)
    stride = 4
    cell_centre = 1.0

    def __init__(
        self,
        n_landmarks: int,
        width: int = 24,
        depth: int = 6,
        block: str = "hmp",
        in_channels: int = 1,
        dropout: float = 0.25,
        upsample: str = "nearest",
    ) -> None:
        super().__init__()
        if block not in BLOCKS:
            raise ValueError(f"block must be one of {BLOCKS}, not {block!r}")
        if upsample not in UPSAMPLING:
            raise ValueError(f"upsample must be one of {UPSAMPLING}, not {upsample!r}")
        self.n_landmarks, self.width, self.depth, self.block = n_landmarks, width, depth, block
        self.layer1 = nn.Sequential(
            nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            make_block(block, width, width * 2),
            nn.MaxPool2d(2),
        )
        self.layer2 = nn.Sequential(
            make_block(block, width * 2, width * 2),
            make_block(block, width * 2, width * 2),
            make_block(block, width * 2, width * 4),
        )
        self.hourglass = Hourglass(depth, width * 4, width * 4, width * 8, block, upsample)
        self.mixer = nn.Sequential(
            nn.Dropout2d(p=dropout),
            conv_bn(width * 8, width * 8, relu=True),
            nn.Dropout2d(p=dropout),
            conv_bn(width * 8, width * 4, relu=True),
        )
        self.out_block = nn.Sequential(nn.Conv2d(width * 4, n_landmarks, kernel_size=1))

    def heatmaps(self, x: torch.Tensor) -> torch.Tensor:
        """Per-landmark heatmap logits (B, K, H/4, W/4), before the soft-argmax."""
        return self.out_block(self.mixer(self.hourglass(self.layer2(self.layer1(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised landmark coordinates (B, K, 2) as (x, y) in [0, 1): column j and row i of an
        (h, w) heatmap count as j/w, i/h."""
        heatmaps = self.heatmaps(x)
        h, w = heatmaps.shape[-2:]
        return soft_argmax(heatmaps) / torch.tensor([w, h], dtype=heatmaps.dtype, device=heatmaps.device)
