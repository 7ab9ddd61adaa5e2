"""Knee model files: every config value is range-checked on load, so a crafted file (valid checksum) with an
absurd network or geometry is refused with one line before any network is built."""

from __future__ import annotations

import copy

import pytest
from KneeLandmarksLib.model_file import MODEL_KIND
from KneeLandmarksLib.pipeline import KneeModel, default_model_path
from LandmarkCoreLib.errors import ModelFileError
from LandmarkCoreLib.modelfile import ModelFile, describe_model_file, load_model_file, save_model_file


@pytest.fixture(scope="module")
def bundled() -> ModelFile:
    return load_model_file(default_model_path(), MODEL_KIND)


def crafted(model: ModelFile, path, change) -> None:
    config = copy.deepcopy(model.config)
    change(config)
    empty_networks = {name: {} for name in model.tensors}  # the check runs before any network is built
    save_model_file(path, ModelFile(model.kind, config, empty_networks))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda c: c["networks"]["stage2"].update(depth=10**6),
            r"stage2 network 'depth': must be in \[1, 8\]",
        ),
        (
            lambda c: c["networks"]["stage1"].update(width=10**5),
            r"stage1 network 'width': must be in \[1, 256\]",
        ),
        (
            lambda c: c["networks"]["stage3"].update(block="resnet"),
            "stage3 network 'block': must be one of hmp",
        ),
        (
            lambda c: c["preset"]["stage2"].update(size=[10**6, 288]),
            r"preset stage2 'size': must be in \[8, 2048\]",
        ),
        (
            lambda c: c["preset"]["stage1"].update(spacing_mm=float("inf")),
            "preset stage1 'spacing_mm': must be finite",
        ),
        (
            lambda c: c["preset"].update(roi_offset_mm=[float("nan"), 0.0]),
            "preset 'roi_offset_mm': must be finite",
        ),
        (lambda c: c.update(nominal_pixel_size_mm=-1.0), "model 'nominal_pixel_size_mm'"),
        (lambda c: c["preset"].pop("stage2"), "preset stage2: expected a mapping of settings, got NoneType"),
    ],
)
def test_crafted_values_are_refused_on_load(bundled, tmp_path, change, message):
    path = tmp_path / "crafted.pt"
    crafted(bundled, path, change)
    with pytest.raises(ModelFileError, match=r"crafted\.pt'?: " + message):
        KneeModel.load(path)


def test_bundled_model_passes_the_check_and_is_described(bundled):
    assert describe_model_file(default_model_path()) == (
        "KneeLandmarks 'knee-model' file: cephalometric preset, 19 landmarks, stage1, stage2, stage3"
    )
