"""The target networks and the compared training methods.

Methods (paper, Sec. 3.3): FE (encoder frozen), FTP (all but the last encoder stage frozen), FT
(nothing frozen), CTD-CD / CTD-ED / CTD-Com (FT plus the cross-task regularisers of
:mod:`losses`), HG (a stacked-hourglass baseline trained from scratch -- the shared KNEEL hourglass of
``LandmarkCoreLib.networks``, reused, not copied).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from LandmarkCoreLib.errors import InputError
from LandmarkCoreLib.networks import KneelHourglass
from torch import nn

from .decoder import DeconvDecoder
from .resnet import FaceClassifier, ResNetEncoder


@dataclass(frozen=True)
class Method:
    name: str
    frozen_stages: tuple[str, ...]  # encoder parts kept fixed (and in inference mode)
    classifier_weight: float = 0.0  # lambda of L_CD
    encoder_weight: float = 0.0  # lambda of L_ED
    hourglass: bool = False

    @property
    def needs_source(self) -> bool:
        return not self.hourglass

    @property
    def regularised(self) -> bool:
        return self.classifier_weight > 0 or self.encoder_weight > 0


STEM_AND_EARLY = ("conv1", "bn1", "layer1", "layer2", "layer3")
#: lambda (Eq. 2); the paper's value was lost from the text and was not tuned here.
LAMBDA = 1.0
METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("FE", STEM_AND_EARLY + ("layer4",)),
        Method("FTP", STEM_AND_EARLY),
        Method("FT", ()),
        Method("CTD-CD", (), classifier_weight=LAMBDA),
        Method("CTD-ED", (), encoder_weight=LAMBDA),
        Method("CTD-Com", (), classifier_weight=LAMBDA, encoder_weight=LAMBDA),
        Method("HG", (), hourglass=True),
    )
}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise InputError("method", f"'{name}' is not one of {', '.join(METHODS)}")
    return METHODS[name]


class HeatmapNet(nn.Module):
    """Encoder + SimpleBaselines decoder -> heatmaps at 1/4 (3 decoder stages) or 1/2 (4) of the input.

    Heatmap cell (i, j) covers input pixels [s i, s i + s) x [s j, s j + s) of the stride s; its centre
    is input pixel s i + (s - 1) / 2 (``stride``, ``cell_centre``).  ``features(x)`` returns the encoder
    output that CTD-ED constrains.
    """

    def __init__(
        self, depth: int, width: int, n_points: int, decoder_channels: int, decoder_stages: int = 3
    ) -> None:
        super().__init__()
        self.encoder = ResNetEncoder(depth, width)
        self.decoder = DeconvDecoder(self.encoder.out_channels, n_points, decoder_channels, decoder_stages)
        self.stride = 32 // 2**decoder_stages
        self.cell_centre = (self.stride - 1) / 2.0

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def heatmaps(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class HourglassNet(nn.Module):
    """The KNEEL hourglass on RGB input, used as the HG baseline."""

    stride = 4

    def __init__(self, n_points: int, width: int, depth: int) -> None:
        super().__init__()
        self.net = KneelHourglass(n_points, width=width, depth=depth, block="hmp", in_channels=3)
        self.cell_centre = float(self.net.cell_centre)

    def heatmaps(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.heatmaps(x)


def build_network(config: dict) -> nn.Module:
    """The target network described by a model config (``config['architecture']``)."""
    arch = config["architecture"]
    if arch["type"] == "hourglass":
        return HourglassNet(arch["n_points"], arch["width"], arch["depth"])
    return HeatmapNet(
        arch["depth"],
        arch["width"],
        arch["n_points"],
        arch["decoder_channels"],
        arch.get("decoder_stages", 3),
    )


def init_from_source(network: HeatmapNet, source: FaceClassifier) -> None:
    """Copy the source encoder into the target (Sec. 2.2.3); the decoder stays freshly initialised."""
    if (network.encoder.depth, network.encoder.width) != (source.encoder.depth, source.encoder.width):
        raise InputError(
            "source model",
            f"is a ResNet-{source.encoder.depth} of width {source.encoder.width}, but the target asks for "
            f"ResNet-{network.encoder.depth} of width {network.encoder.width}",
        )
    network.encoder.load_state_dict(source.encoder.state_dict())


def freeze(network: HeatmapNet, method: Method) -> list[nn.Module]:
    """Freeze the method's encoder parts; return them (they must stay in eval mode during training)."""
    frozen = [getattr(network.encoder, name) for name in method.frozen_stages]
    for module in frozen:
        for parameter in module.parameters():
            parameter.requires_grad_(False)
    return frozen
