"""Coordinate regression losses compared in KNEEL (Table 1): wing (default), L1, L2, elastic (L1 + L2).

All take predictions and targets (B, K, 2) in the same units; the trainer passes input-pixel
coordinates, so wing's ``width`` (w = 15) and ``curvature`` (C = 3) are pixels of the network input.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class WingLoss(nn.Module):
    """Feng et al. 2018: w ln(1 + |d|/C) for |d| < w, |d| - (w - w ln(1 + w/C)) beyond."""

    def __init__(self, width: float = 15.0, curvature: float = 3.0) -> None:
        super().__init__()
        self.width, self.curvature = width, curvature
        self.offset = width - width * math.log(1 + width / curvature)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        diff = (pred - target).abs()
        small = self.width * torch.log1p(diff / self.curvature)
        return torch.where(diff < self.width, small, diff - self.offset).mean()


class ElasticLoss(nn.Module):
    """Sum of L2 and L1 (the paper's 'elastic' loss)."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(pred, target) + nn.functional.l1_loss(pred, target)


LOSSES = ("wing", "l1", "l2", "elastic")


def make_loss(name: str, wing_width: float = 15.0, wing_curvature: float = 3.0) -> nn.Module:
    if name == "wing":
        return WingLoss(wing_width, wing_curvature)
    if name == "l1":
        return nn.L1Loss()
    if name == "l2":
        return nn.MSELoss()
    if name == "elastic":
        return ElasticLoss()
    raise ValueError(f"loss must be one of {LOSSES}, not {name!r}")
