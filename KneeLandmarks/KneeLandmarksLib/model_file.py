"""Knee model files: their kinds, the range check of every config value a model file carries (run on
load, so a crafted file cannot make detection allocate or loop without bound), and the chaining of the
stages (a stage starts from, and its file carries, the networks of the stages before it)."""

from __future__ import annotations

import os
from pathlib import Path

from LandmarkCoreLib.errors import ModelFileError
from LandmarkCoreLib.modelfile import ModelFile, load_model_file
from torch import nn

from .presets import Preset

MODEL_KIND = "knee-model"
CHECKPOINT_KIND = "knee-checkpoint"


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
