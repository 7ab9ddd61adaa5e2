"""The shallow 2D U-Net of Wang et al. 2021, Sec. 3.2.

Full-resolution branch: 4 convolutions of ``width`` channels. One level down (max-pool /2): convolutions
of ``2*width`` channels. Upsampling back, concatenation with the full-resolution features
(``width + 2*width`` channels), then 5 convolutions: 4 of ``width`` channels and a last 1x1 one giving
one logit per pixel. The sigmoid is applied by the loss (BCE with logits) in training and by
:meth:`ShallowUNet.probabilities` at inference.

BatchNorm after each convolution is our addition (the paper does not say); it makes Adam training from
scratch on one image stable and fast on a CPU budget.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv_block(in_channels: int, out_channels: int, count: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(count):
        layers += [
            nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*layers)


class ShallowUNet(nn.Module):
    """Input (B, 1, H, W) with H, W even; output (B, 1, H, W) logits."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.width = width
        self.full = _conv_block(1, width, 4)
        self.down = nn.Sequential(nn.MaxPool2d(2), _conv_block(width, 2 * width, 2))
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.merge = _conv_block(3 * width, width, 4)
        self.head = nn.Conv2d(width, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        full = self.full(x)
        coarse = self.up(self.down(full))
        return self.head(self.merge(torch.cat([full, coarse], dim=1)))

    @torch.inference_mode()
    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self(x))
