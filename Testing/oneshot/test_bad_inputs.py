"""Bad inputs give clear errors or recorded failures; training resumes after an interruption."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from LandmarkCoreLib.batch import iter_records
from LandmarkCoreLib.errors import Cancelled, InputError, ModelFileError
from LandmarkCoreLib.images import write_image
from LandmarkCoreLib.landmarks import LandmarkSet
from LandmarkCoreLib.modelfile import ModelFile, save_model_file
from LandmarkCoreLib.progress import CancelToken
from OneShotLandmarksLib import cli
from OneShotLandmarksLib.config import DetectionConfig, TrainingConfig
from OneShotLandmarksLib.model import OneShotModel
from OneShotLandmarksLib.pipeline import (
    PoseNotFoundError,
    detect_landmarks,
    require_inside_target,
    train_model,
)
from synthetic import QUARTER_TURN, TINY_TRAINING, image_from, object_and_soi, object_grid

SHAPE, CENTRE = object_grid(36)
SHORT = replace(TINY_TRAINING, max_epochs=3, volumes_per_epoch=1)
FAST_DETECTION = DetectionConfig(
    registration_spacing_mm=2.0,
    demons_spacings_mm=[2.0],
    demons_iterations=[5],
    linear_shrink_factors=[1],
    linear_iterations=10,
    max_iterations=2,
)


REFERENCE, REFERENCE_SOI = object_and_soi(SHAPE, CENTRE)
VALIDATION, VALIDATION_SOI = object_and_soi(SHAPE, CENTRE, QUARTER_TURN)
LANDMARKS = LandmarkSet(["a", "b", "c"], CENTRE + np.array([[4.0, 0, 0], [0, 2, 0], [-3, 0, 1]]))


def _train(
    settings: TrainingConfig = TINY_TRAINING, validation=(VALIDATION, VALIDATION_SOI), **options
) -> OneShotModel:
    """``train_model`` from the synthetic reference with ``settings`` and the fast detection."""
    return train_model(REFERENCE, LANDMARKS, REFERENCE_SOI, *validation, settings, FAST_DETECTION, **options)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    _train().save(path)
    return path


def test_empty_soi_mask_is_refused():
    with pytest.raises(InputError, match="reference SOI mask.*no foreground"):
        train_model(
            REFERENCE,
            LANDMARKS,
            REFERENCE_SOI * 0,
            VALIDATION,
            VALIDATION_SOI,
            TINY_TRAINING,
        )


def test_landmarks_outside_reference_are_refused():
    outside = LandmarkSet(["a", "far"], np.array([CENTRE, CENTRE + 100.0]))
    with pytest.raises(InputError, match="outside the reference image: far"):
        train_model(REFERENCE, outside, REFERENCE_SOI, VALIDATION, VALIDATION_SOI, TINY_TRAINING)


def test_2d_input_is_refused(tiny_model):
    flat = sitk.Image([20, 20], sitk.sitkFloat32)
    with pytest.raises(InputError, match="target image: must be a 3D image, got 2D"):
        detect_landmarks(OneShotModel.load(tiny_model), flat)
    with pytest.raises(InputError, match="validation image: must be a 3D image"):
        train_model(REFERENCE, LANDMARKS, REFERENCE_SOI, flat, VALIDATION_SOI, TINY_TRAINING)


def test_corrupt_or_foreign_model_files_are_refused(tiny_model, tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(tiny_model.read_bytes()[:5000])
    with pytest.raises(ModelFileError, match="corrupt.pt"):
        OneShotModel.load(corrupt)
    foreign = tmp_path / "knee.pt"
    save_model_file(foreign, ModelFile("knee-model", {}, {"w": torch.zeros(2)}))
    with pytest.raises(ModelFileError, match="knee-model"):
        OneShotModel.load(foreign)
    pickled = tmp_path / "pickled.pt"
    torch.save({"format": "slicer-landmark-detection-model", "evil": object()}, pickled)
    with pytest.raises(ModelFileError):
        OneShotModel.load(pickled)


def test_interrupted_training_resumes_from_checkpoint(tmp_path):
    checkpoint = tmp_path / "run.checkpoint"
    cancel = CancelToken()

    def cancel_after_first_epoch(fraction, message):
        if message.startswith("epoch 1/") and "validation" in message:  # epoch 1 finished
            cancel.cancel()

    with pytest.raises(Cancelled):
        _train(SHORT, progress=cancel_after_first_epoch, cancel=cancel, checkpoint_path=checkpoint)
    assert checkpoint.exists()
    messages = []
    model = _train(SHORT, progress=lambda f, m: messages.append(m), checkpoint_path=checkpoint)
    assert messages[0] == "resumed at epoch 1"
    assert [h["epoch"] for h in model.training_summary["history"]] == [1, 2, 3]
    with pytest.raises(InputError, match="other training settings"):
        _train(replace(SHORT, seed=7), checkpoint_path=checkpoint)
    with pytest.raises(InputError, match="other images"):
        _train(SHORT, (REFERENCE, REFERENCE_SOI), checkpoint_path=checkpoint)


def test_cli_records_a_failing_target_and_keeps_the_others(tiny_model, tmp_path):
    good = tmp_path / "in" / "good.nii.gz"
    write_image(good, REFERENCE)
    write_image(tmp_path / "in" / "empty.nii.gz", image_from(np.zeros(SHAPE)))
    (tmp_path / "in" / "flat.nii.gz").parent.mkdir(exist_ok=True)
    write_image(tmp_path / "in" / "flat.nii.gz", sitk.Image([20, 20], sitk.sitkFloat32))
    out = tmp_path / "out"
    code = cli.main(
        ["detect", "-m", str(tiny_model), "-o", str(out), "--progress-format", "jsonl", str(tmp_path / "in")]
    )
    assert code == 1
    status = {Path(r["input"]).name: r for r in iter_records(out)}
    assert set(status) == {"good.nii.gz", "empty.nii.gz", "flat.nii.gz"}
    assert status["empty.nii.gz"]["status"] == "failed" and "not found" in status["empty.nii.gz"]["reason"]
    assert status["flat.nii.gz"]["status"] == "failed" and "3D" in status["flat.nii.gz"]["reason"]
    assert status["good.nii.gz"]["status"] == "done"
    assert 1 <= len(status["good.nii.gz"]["centre_iterations"]) <= 8
    assert (out / "good.mrk.json").exists() and (out / "good_qc.png").exists()
    assert not (out / "empty.mrk.json").exists()


def test_a_pose_far_less_similar_than_required_is_a_failure_not_an_answer(tiny_model):
    model = OneShotModel.load(tiny_model)
    result = detect_landmarks(model, REFERENCE, device="cpu")  # the reference itself: near-perfect pose
    best = max(result.rotation_scores["polished"].values())
    assert best >= model.detection.min_pose_similarity
    model.detection.min_pose_similarity = best + 0.01
    with pytest.raises(PoseNotFoundError, match="no pose of the target matches"):
        detect_landmarks(model, REFERENCE, device="cpu")


def test_landmarks_outside_the_target_image_are_a_failure():
    inside = CENTRE + np.array([[4.0, 0, 0], [0, 2, 0]])
    require_inside_target(inside, REFERENCE, ["a", "b"])
    with pytest.raises(PoseNotFoundError, match="1 of 2 detected landmarks fall outside.*b"):
        require_inside_target(inside + np.array([[0.0, 0, 0], [0, 0, -40]]), REFERENCE, ["a", "b"])
