"""Settings of the face trainings (source and target) and the face model-file kinds with their
load-time range checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from LandmarkCoreLib.errors import InputError
from LandmarkCoreLib.modelfile import ModelFile, ModelKind, register_kind
from LandmarkCoreLib.settings import setting, settings_from_dict

from .data import BOX_MARGIN
from .methods import METHODS

SEED_RANGE = {"minimum": 0, "maximum": 2**31 - 1}


@dataclass
class SourceConfig:
    depth: int = setting(18, choices=(18, 34, 50), help="ResNet depth")
    width: int = setting(
        32, minimum=8, maximum=256, help="channels of the first ResNet stage (64 = standard)"
    )
    input_size: int = setting(96, minimum=32, maximum=512, help="face crop side (pixels)")
    epochs: int = setting(20, minimum=1, maximum=10000, help="training epochs")
    batch_size: int = setting(64, minimum=1, maximum=4096, help="images per batch")
    learning_rate: float = setting(1e-3, minimum=1e-7, maximum=1.0, help="AdamW learning rate")
    weight_decay: float = setting(1e-4, minimum=0.0, maximum=1.0, help="AdamW weight decay")
    label_smoothing: float = setting(0.1, minimum=0.0, maximum=0.99, help="identity label smoothing")
    seed: int = setting(0, **SEED_RANGE, help="random seed")


@dataclass
class TargetConfig:
    method: str = setting("CTD-ED", choices=tuple(METHODS), help="training method")
    n_labels: int = setting(0, minimum=0, maximum=10**7, help="labelled training images (0 = every one)")
    seed: int = setting(0, **SEED_RANGE, help="random seed")
    steps: int = setting(1500, minimum=1, maximum=10**7, help="training steps")
    batch_size: int = setting(16, minimum=1, maximum=4096, help="images per step")
    learning_rate: float = setting(1e-3, minimum=1e-7, maximum=1.0, help="Adam learning rate")
    #: the paper's value was lost from the text
    sigma: float = setting(1.0, minimum=0.1, maximum=20.0, help="Gaussian width in heatmap pixels")
    #: tau of Eq. 3 (paper's value lost; not tuned)
    temperature: float = setting(4.0, minimum=0.01, maximum=100.0, help="distillation temperature")
    #: auxiliary soft-argmax L1 loss (not in the paper, see losses.py)
    coordinate_weight: float = setting(1.0, minimum=0.0, maximum=100.0, help="coordinate-loss weight")
    decoder_channels: int = setting(128, minimum=1, maximum=1024, help="SimpleBaselines decoder channels")
    decoder_stages: int = setting(
        3, minimum=3, maximum=4, help="decoder upsamplings (3: heatmaps at 1/4 of the input, 4: at 1/2)"
    )
    #: brightness, contrast, saturation, gamma, grey and blur, scaled together (data.photometric_jitter)
    photometric: float = setting(0.0, minimum=0.0, maximum=1.0, help="photometric augmentation strength")
    evaluate_every: int = setting(
        0, minimum=0, maximum=10**7, help="steps between validation scores (0 = none)"
    )
    hourglass_width: int = setting(16, minimum=1, maximum=256, help="HG baseline width")
    hourglass_depth: int = setting(3, minimum=1, maximum=8, help="HG baseline depth")
    checkpoint_every: int = setting(50, minimum=1, maximum=10**7, help="steps between checkpoints")


@dataclass
class ArchitectureSettings:
    """A target network as a face-model file describes it (``build_network``)."""

    type: str = setting("resnet-simplebaselines", choices=("resnet-simplebaselines", "hourglass"), help="")
    n_points: int = setting(68, minimum=1, maximum=1000, help="landmarks")
    depth: int = setting(18, minimum=1, maximum=50, help="ResNet depth or hourglass pooling levels")
    width: int = setting(32, minimum=1, maximum=256, help="channels of the first stage")
    decoder_channels: int | None = setting(None, minimum=1, maximum=1024, help="SimpleBaselines decoder")
    decoder_stages: int = setting(3, minimum=3, maximum=4, help="SimpleBaselines upsamplings")


@dataclass
class SourceArchitectureSettings:
    depth: int = setting(18, choices=(18, 34, 50), help="ResNet depth")
    width: int = setting(32, minimum=8, maximum=256, help="channels of the first stage")
    n_classes: int = setting(2, minimum=1, maximum=10**6, help="identities")


@dataclass
class CropSettings:
    input_size: int = setting(96, minimum=32, maximum=512, help="face crop side (pixels)")
    box_margin: float = setting(BOX_MARGIN, minimum=0.0, maximum=2.0, help="margin around the face box")


def check_target_config(model: ModelFile) -> None:
    """Range-check every value of a face-model's network, crop and training settings."""
    config = model.config
    arch = settings_from_dict(ArchitectureSettings, config["architecture"], "architecture")
    if arch.type == "hourglass" and arch.depth > 8:
        raise InputError("architecture 'depth'", f"an hourglass has at most 8 levels, got {arch.depth}")
    _check_crop(config)
    if "training" in config:
        settings_from_dict(TargetConfig, config["training"], "training")
    if config.get("source") is not None:
        settings_from_dict(SourceConfig, config["source"], "source training")
    if config.get("fine_tuned_from") is not None:
        settings_from_dict(TargetConfig, config["fine_tuned_from"], "training of the initial model")


def check_source_config(model: ModelFile) -> None:
    """Range-check every value of a face-source file's network, crop and training settings."""
    config = model.config
    settings_from_dict(SourceArchitectureSettings, config["architecture"], "architecture")
    _check_crop(config)
    if "training" in config:  # an imported network has none
        settings_from_dict(SourceConfig, config["training"], "training")


def _check_crop(config: dict[str, Any]) -> None:
    crop = {"input_size": config["input_size"]}
    if "box_margin" in config:
        crop["box_margin"] = config["box_margin"]
    settings_from_dict(CropSettings, crop, "crop")


def describe_target(model: ModelFile) -> str:
    arch = model.config["architecture"]
    method = model.config["training"]["method"]
    return f"{arch['n_points']} landmarks, {method} ({arch['type']}), {model.config['input_size']} px crops"


def describe_source(model: ModelFile) -> str:
    arch = model.config["architecture"]
    return f"face-recognition ResNet-{arch['depth']} source network, {arch['n_classes']} identities"


SOURCE_KIND = register_kind(ModelKind("face-source", "FaceLandmarks", check_source_config, describe_source))
MODEL_KIND = register_kind(ModelKind("face-model", "FaceLandmarks", check_target_config, describe_target))
CHECKPOINT_KIND = register_kind(ModelKind("face-checkpoint", "FaceLandmarks"))
