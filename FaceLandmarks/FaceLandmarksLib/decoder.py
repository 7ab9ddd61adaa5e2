"""SimpleBaselines decoder (Xiao et al. 2018), Gaussian heatmap targets and sub-pixel decoding."""

from __future__ import annotations

import torch
from torch import nn


class DeconvDecoder(nn.Module):
    """``stages`` 4x4 stride-2 transposed convolutions (+BN+ReLU), then a 1x1 conv to one heatmap per
    point.

    On a stride-32 encoder three stages (SimpleBaselines, the paper) give heatmaps at 1/4 of the input
    resolution, four at 1/2.  ``channels`` is 256 in the paper (and in SimpleBaselines).
    """

    def __init__(self, in_channels: int, n_points: int, channels: int = 256, stages: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(stages):
            layers += [
                nn.ConvTranspose2d(in_channels, channels, 4, 2, 1, bias=False),
                nn.BatchNorm2d(channels),
                nn.ReLU(inplace=True),
            ]
            in_channels = channels
        self.deconv = nn.Sequential(*layers)
        self.head = nn.Conv2d(channels, n_points, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.deconv(features))


def gaussian_heatmaps(points: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """Heatmaps (B, N, size, size), h(x, y) = exp(-((x-u)^2 + (y-v)^2) / (2 sigma^2)) for each point
    (u, v) given in heatmap pixels (pixel centres at integers), peak value 1."""
    grid = torch.arange(size, dtype=points.dtype, device=points.device)
    dx = (grid[None, None, :] - points[..., 0:1]) ** 2  # (B, N, W)
    dy = (grid[None, None, :] - points[..., 1:2]) ** 2  # (B, N, H)
    return torch.exp(-(dy[..., :, None] + dx[..., None, :]) / (2.0 * sigma**2))


def decode_heatmaps(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sub-pixel peak locations (B, N, 2) in heatmap pixels and peak values (B, N).

    Arg-max, refined by a second-order Taylor step on the log of the heatmap around the peak (DARK,
    Zhang et al. 2020): for a Gaussian, log h is quadratic, so the step lands on the true centre.  The
    step is clipped to half a pixel so a noisy neighbourhood cannot throw the estimate away; peaks on
    the border keep the arg-max (their neighbourhood is incomplete).
    """
    batch, n, height, width = heatmaps.shape
    flat = heatmaps.reshape(batch, n, -1)
    peak, index = flat.max(dim=-1)
    row = torch.div(index, width, rounding_mode="floor")
    col = index % width
    log_map = torch.log(heatmaps.clamp_min(1e-6))
    padded = nn.functional.pad(log_map, (1, 1, 1, 1), mode="replicate")
    b = torch.arange(batch)[:, None]
    k = torch.arange(n)[None, :]
    r, c = row + 1, col + 1

    def at(dr: int, dc: int) -> torch.Tensor:
        return padded[b, k, r + dr, c + dc]

    centre = at(0, 0)
    dx = (at(0, 1) - at(0, -1)) / 2
    dy = (at(1, 0) - at(-1, 0)) / 2
    dxx = at(0, 1) - 2 * centre + at(0, -1)
    dyy = at(1, 0) - 2 * centre + at(-1, 0)
    dxy = (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1)) / 4
    det = dxx * dyy - dxy**2
    interior = (row > 0) & (row < height - 1) & (col > 0) & (col < width - 1)
    valid = (det > 1e-6) & (dxx < 0) & (dyy < 0) & interior
    safe_det = torch.where(valid, det, torch.ones_like(det))
    step_x = torch.where(valid, -(dyy * dx - dxy * dy) / safe_det, torch.zeros_like(det)).clamp(-0.5, 0.5)
    step_y = torch.where(valid, -(dxx * dy - dxy * dx) / safe_det, torch.zeros_like(det)).clamp(-0.5, 0.5)
    coords = torch.stack((col.to(heatmaps.dtype) + step_x, row.to(heatmaps.dtype) + step_y), dim=-1)
    return coords, peak
