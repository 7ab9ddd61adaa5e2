"""ResNet encoder (depth 18, 34 or 50, as in He et al. 2016) with an identity-classifier head.

``width`` is the channel count of the first stage (64 in the standard ResNets; a narrower trunk is
this project's CPU option, because the 2-core CPU is the binding constraint).

The layer names follow the usual torchvision layout (``conv1``, ``bn1``, ``layer1.0.conv1`` ...,
``fc``) so that published weights map onto it by name (see :mod:`vggface2_import`).  ResNet-50 is
the paper's source network; ResNet-18 is this project's CPU default.
"""

from __future__ import annotations

import torch
from LandmarkCoreLib.errors import InputError
from torch import nn

#: depth -> (block type, blocks per stage)
RESNET_LAYOUTS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
}


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_ch: int, width: int, stride: int) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.conv1 = nn.Conv2d(in_ch, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_ch, out_ch, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (self.downsample(x) if self.downsample is not None else x))


class Bottleneck(nn.Module):
    """Bottleneck with the stride on the first 1x1 conv, as in the original Caffe ResNet-50
    (the layout of the VGGFace2 release)."""

    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.conv1 = nn.Conv2d(in_ch, width, 1, stride, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_ch, out_ch, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (self.downsample(x) if self.downsample is not None else x))


def _shortcut(in_ch: int, out_ch: int, stride: int) -> nn.Module | None:
    if stride == 1 and in_ch == out_ch:
        return None
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))


class ResNetEncoder(nn.Module):
    """ResNet trunk: stem + 4 stages; output stride 32, ``out_channels`` feature channels."""

    def __init__(self, depth: int = 18, width: int = 64) -> None:
        super().__init__()
        if depth not in RESNET_LAYOUTS:
            raise InputError("ResNet depth", f"{depth} is not one of {sorted(RESNET_LAYOUTS)}")
        if width < 8:
            raise InputError("ResNet width", f"{width} channels in the first stage is too few (>= 8)")
        kind, blocks = RESNET_LAYOUTS[depth]
        block = BasicBlock if kind == "basic" else Bottleneck
        self.depth, self.width = depth, width
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        in_ch = width
        for index, count in enumerate(blocks, start=1):
            stage_width = width * 2 ** (index - 1)
            layers = []
            for b in range(count):
                layers.append(block(in_ch, stage_width, 2 if (b == 0 and index > 1) else 1))
                in_ch = stage_width * block.expansion
            setattr(self, f"layer{index}", nn.Sequential(*layers))
        self.out_channels = in_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class FaceClassifier(nn.Module):
    """Source network of the paper: encoder E followed by a linear identity classifier C."""

    def __init__(self, depth: int, n_classes: int, width: int = 64) -> None:
        super().__init__()
        self.encoder = ResNetEncoder(depth, width)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.encoder.out_channels, n_classes)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Identity logits from encoder feature maps."""
        return self.fc(torch.flatten(self.pool(features), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.encoder(x))
