"""Knee model files: their kinds, the range check of every config value a model file carries (run on
load, so a crafted file cannot make detection allocate or loop without bound), and the chaining of the
stages (a stage starts from, and its file carries, the networks of the stages before it)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from LandmarkCoreLib.errors import ModelFileError
from LandmarkCoreLib.modelfile import ModelFile, ModelKind, load_model_file, register_kind
from LandmarkCoreLib.networks import HourglassSettings
from LandmarkCoreLib.settings import setting, settings_from_dict
from torch import nn

from .presets import Preset


@dataclass
class GeometrySettings:
    """A stage's network input (:class:`~.presets.StageGeometry`) as a model file carries it."""

    spacing_mm: float = setting(1.0, minimum=0.01, maximum=20.0, help="pixel size (mm)")
    size: list[int] = setting([256, 256], minimum=8, maximum=2048, help="(width, height) in pixels")


@dataclass
class PresetSettings:
    """The other values of a preset (:class:`~.presets.Preset`) as a model file carries them."""

    name: str = setting("knee", help="preset name")
    landmark_names: list[str] = setting(["landmark"], help="landmark names")
    roi_offset_mm: list[float] = setting([0.0, 0.0], minimum=-1000.0, maximum=1000.0, help="ROI offset")
    mirror_side: str | None = setting(None, choices=("L", "R"), help="side that is mirrored")
    width: int = setting(24, minimum=1, maximum=256, help="network width")
    depth: int = setting(6, minimum=1, maximum=8, help="hourglass depth")
    stage3_depth: int = setting(3, minimum=1, maximum=8, help="stage-3 hourglass depth")


@dataclass
class PriorSettings:
    """What a knee model learnt from its training images besides the networks."""

    roi_prior_mm: list[float] | None = setting(None, minimum=-1000.0, maximum=1000.0, help="ROI centre")
    nominal_pixel_size_mm: float | None = setting(None, minimum=0.001, maximum=10.0, help="pixel size")


def check_model_config(model: ModelFile) -> None:
    """Range-check every value of a knee model's preset, networks and priors (InputError names it)."""
    config = model.config
    preset = dict(config["preset"])
    for stage in ("stage1", "stage2", "stage3"):
        geometry = preset.pop(stage, None)
        if geometry is not None or stage != "stage3":
            settings_from_dict(GeometrySettings, geometry, f"preset {stage}")
    settings_from_dict(PresetSettings, preset, "preset")
    for name, network in config["networks"].items():
        settings_from_dict(HourglassSettings, network, f"{name} network")
    priors = {k: config[k] for k in ("roi_prior_mm", "nominal_pixel_size_mm") if k in config}
    settings_from_dict(PriorSettings, priors, "model")


def describe_model(model: ModelFile) -> str:
    preset, stages = model.config["preset"], sorted(model.tensors)
    return f"{preset['name']} preset, {len(preset['landmark_names'])} landmarks, {', '.join(stages)}"


MODEL_KIND = register_kind(ModelKind("knee-model", "KneeLandmarks", check_model_config, describe_model))
CHECKPOINT_KIND = register_kind(ModelKind("knee-checkpoint", "KneeLandmarks"))


def initialise_from(model: nn.Module, init_model: Path, stage: int = 2) -> None:
    """Start ``stage`` from ``init_model``: its own stage when that fits this network exactly (fine-tuning
    a trained model), else the stage before. Stage 2 takes every tensor of stage 1 but the output layer
    (KNEEL's transfer from the low-budget task); stage 3 every tensor of stage 2 that fits its shape."""
    stored = load_model_file(init_model, MODEL_KIND)
    own = model.state_dict()
    previous = stored.tensors.get(f"stage{stage}")
    if (
        isinstance(previous, dict)
        and previous.keys() == own.keys()
        and all(previous[k].shape == own[k].shape for k in own)
    ):
        model.load_state_dict(previous)
        return
    source = stored.tensors.get(f"stage{stage - 1}")
    if source is None:
        raise ModelFileError(
            f"model file '{init_model}': has no stage-{stage - 1} network to start stage {stage} from"
        )
    transferable = {
        k: v
        for k, v in source.items()
        if (stage == 3 or not k.startswith("out_block")) and k in own and own[k].shape == v.shape
    }
    if stage == 3:
        if stored.config.get("coordinate_convention") != "cell-centre":
            raise ModelFileError(
                f"model file '{init_model}': an imported KNEEL model; stage 3 builds on this project's own "
                "two-stage models"
            )
    elif len(transferable) < len(own) - 2:
        raise ModelFileError(
            f"model file '{init_model}': its stage-1 network does not match this stage-2 network "
            f"(width/depth/block differ: {len(transferable)} of {len(own)} tensors fit)"
        )
    model.load_state_dict(transferable, strict=False)


def chained_model(init_model: str | os.PathLike, stage: int) -> ModelFile:
    """``init_model``, checked to hold every stage before ``stage``."""
    source = load_model_file(init_model, MODEL_KIND)
    for earlier in range(1, stage):
        if f"stage{earlier}" not in source.tensors:
            raise ModelFileError(f"model file '{init_model}': has no stage-{earlier} network to chain")
    return source


def stage_model_file(
    model: nn.Module, net_config: dict, preset: Preset, config, history: list, init_model
) -> ModelFile:
    """The knee-model of a trained stage, with the other stages copied from ``init_model``."""
    tensors = {f"stage{config.stage}": model.state_dict()}
    networks = {f"stage{config.stage}": net_config}
    trained = {f"stage{config.stage}": {"train": config.to_config(), "history": history}}
    if config.stage > 1:  # the other stages come from init_model (a later one too: stage 3 is independent)
        source = chained_model(init_model, config.stage)
        for name in source.tensors.keys() - tensors.keys():
            tensors[name] = source.tensors[name]
            networks[name] = source.config["networks"][name]
            trained[name] = source.config["training"][name]
    config_out = {
        "preset": preset.to_config(),
        "networks": networks,
        "training": trained,
        "coordinate_convention": "cell-centre",
    }
    return ModelFile(MODEL_KIND, config_out, tensors)
