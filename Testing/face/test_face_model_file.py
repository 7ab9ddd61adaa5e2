"""Face model files: every config value is range-checked on load, so a crafted file (valid checksum) with an
absurd network, crop or training setting is refused with one line before any network is built."""

from __future__ import annotations

import copy

import pytest
from FaceLandmarksLib.pipeline import FaceModel, default_model_path
from FaceLandmarksLib.training import MODEL_KIND, SOURCE_KIND
from LandmarkCoreLib.errors import ModelFileError
from LandmarkCoreLib.modelfile import ModelFile, describe_model_file, load_model_file, save_model_file


@pytest.fixture(scope="module")
def bundled() -> ModelFile:
    return load_model_file(default_model_path(), MODEL_KIND)


def crafted(kind: str, config: dict, path, change) -> None:
    config = copy.deepcopy(config)
    change(config)
    save_model_file(path, ModelFile(kind, config, {}))  # the check runs before any network is built


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.update(input_size=10**6), r"crop 'input_size': must be in \[32, 512\]"),
        (lambda c: c.update(box_margin=float("nan")), "crop 'box_margin': must be finite"),
        (lambda c: c["architecture"].update(width=10**5), r"architecture 'width': must be in \[1, 256\]"),
        (lambda c: c["architecture"].update(type="vit"), "architecture 'type': must be one of"),
        (
            lambda c: c["architecture"].update(type="hourglass", depth=40),
            "architecture 'depth': an hourglass has at most 8 levels",
        ),
        (lambda c: c["training"].update(steps=-5), r"training 'steps': must be in \[1, 1e\+07\], got -5"),
        (lambda c: c["source"].update(depth=19), "source training 'depth': must be one of 18, 34, 50"),
    ],
)
def test_crafted_values_are_refused_on_load(bundled, tmp_path, change, message):
    path = tmp_path / "crafted.pt"
    crafted(MODEL_KIND, bundled.config, path, change)
    with pytest.raises(ModelFileError, match=r"crafted\.pt'?: " + message):
        FaceModel.load(path)


def test_crafted_source_file_is_refused(bundled, tmp_path):
    source = {
        "architecture": {"depth": 18, "width": 8, "n_classes": 3},
        "input_size": 32,
        "classes": ["a", "b", "c"],
        "training": bundled.config["source"],
        "metrics": {},
    }
    crafted(SOURCE_KIND, source, tmp_path / "source.pt", lambda c: None)
    assert load_model_file(tmp_path / "source.pt", SOURCE_KIND).config["input_size"] == 32
    crafted(SOURCE_KIND, source, tmp_path / "bad.pt", lambda c: c["architecture"].update(n_classes=0))
    with pytest.raises(ModelFileError, match=r"bad\.pt'?: architecture 'n_classes': must be in"):
        load_model_file(tmp_path / "bad.pt", SOURCE_KIND)


def test_bundled_model_passes_the_check_and_is_described(bundled):
    assert describe_model_file(default_model_path()) == (
        "FaceLandmarks 'face-model' file: 68 landmarks, CTD-ED (resnet-simplebaselines), 96 px crops"
    )
