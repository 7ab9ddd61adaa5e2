"""Training on synthetic blobs: the stages chain, runs resume exactly, cancelling keeps the checkpoint."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from KneeLandmarksLib.augment import AugmentConfig
from KneeLandmarksLib.data import resolve_training_cases
from KneeLandmarksLib.training import CHECKPOINT_KIND, TrainConfig, fold_split, train_stage
from LandmarkCoreLib.errors import Cancelled, InputError, ModelFileError
from LandmarkCoreLib.modelfile import load_model_file
from LandmarkCoreLib.progress import CancelToken


def config(stage: int, epochs: int) -> TrainConfig:
    return TrainConfig(
        stage=stage, epochs=epochs, batch_size=4, augment=AugmentConfig(mixup_alpha=0.5), seed=1
    )


@pytest.fixture(scope="module")
def cases(blob_dataset):
    return resolve_training_cases(f"{blob_dataset / 'images'}:{blob_dataset / 'landmarks'}")


@pytest.fixture(scope="module")
def stage1_file(cases, tiny_preset, tmp_path_factory):
    path = tmp_path_factory.mktemp("s1") / "stage1.pt"
    train_stage(cases, tiny_preset, config(1, 1), path)
    return path


def test_stage2_starts_from_stage1_and_holds_both(cases, tiny_preset, stage1_file, tmp_path):
    stage1 = load_model_file(stage1_file, "knee-model")
    out = tmp_path / "model.pt"
    cfg = config(2, 1)
    cfg.learning_rate = 0.0  # weights stay at their initialisation: stage 1's
    train_stage(cases, tiny_preset, cfg, out, init_model=stage1_file)
    model = load_model_file(out, "knee-model")
    assert set(model.tensors) == {"stage1", "stage2"}
    assert model.config["networks"]["stage2"]["n_landmarks"] == 2
    for key, value in stage1.tensors["stage1"].items():
        if not key.startswith("out_block") and "running" not in key and "num_batches" not in key:
            assert torch.equal(model.tensors["stage2"][key], value), key
    assert len(model.config["roi_prior_mm"]) == 2
    tuned = tmp_path / "tuned.pt"
    train_stage(cases, tiny_preset, cfg, tuned, init_model=out)  # a full model: fine-tune its stage 2
    for key, value in model.tensors["stage2"].items():
        if "running" not in key and "num_batches" not in key:
            assert torch.equal(load_model_file(tuned, "knee-model").tensors["stage2"][key], value), key
    assert model.config["nominal_pixel_size_mm"] == 1.0  # the blob PNGs' own spacing


@pytest.fixture(scope="module")
def two_stage_file(cases, tiny_preset, stage1_file, tmp_path_factory):
    path = tmp_path_factory.mktemp("s2") / "model.pt"
    train_stage(cases, tiny_preset, config(2, 1), path, init_model=stage1_file)
    return path


def refinement_config() -> TrainConfig:
    return TrainConfig(stage=3, epochs=1, batch_size=8, augment=AugmentConfig(mixup_alpha=0.0), seed=1)


def trained_tensors(state: dict) -> dict:
    """A state dict without batch-norm statistics (they move in a training epoch even at lr 0)."""
    return {k: v for k, v in state.items() if "running" not in k and "num_batches" not in k}


def test_stage3_starts_from_stage2_and_fine_tuning_stage2_keeps_it(
    cases, tiny_preset, two_stage_file, tmp_path
):
    source = load_model_file(two_stage_file, "knee-model")
    refined = tmp_path / "refined.pt"
    cfg = refinement_config()
    cfg.learning_rate = 0.0
    train_stage(cases, tiny_preset, cfg, refined, init_model=two_stage_file)
    model = load_model_file(refined, "knee-model")
    assert set(model.tensors) == {"stage1", "stage2", "stage3"}
    assert model.config["networks"]["stage3"]["n_landmarks"] == 2
    for key, value in trained_tensors(source.tensors["stage2"]).items():  # same shapes: all transfer
        assert torch.equal(model.tensors["stage3"][key], value), key
        assert torch.equal(model.tensors["stage2"][key], value), key
    tuned = tmp_path / "tuned.pt"
    stage2 = config(2, 1)
    stage2.learning_rate = 1e-2
    train_stage(cases, tiny_preset, stage2, tuned, init_model=refined)
    tuned_model = load_model_file(tuned, "knee-model")
    for key, value in model.tensors["stage3"].items():
        assert torch.equal(tuned_model.tensors["stage3"][key], value), key
    assert not torch.equal(
        tuned_model.tensors["stage2"]["out_block.0.weight"], model.tensors["stage2"]["out_block.0.weight"]
    )


def test_stage3_refuses_mixup_a_missing_init_and_a_preset_without_it(
    cases, tiny_preset, stage1_file, two_stage_file, tmp_path
):
    mixed = refinement_config()
    mixed.augment = AugmentConfig(mixup_alpha=0.5)
    with pytest.raises(InputError, match="mixup"):
        train_stage(cases, tiny_preset, mixed, tmp_path / "x.pt", init_model=two_stage_file)
    with pytest.raises(InputError, match="stage-2 model"):
        train_stage(cases, tiny_preset, refinement_config(), tmp_path / "x.pt")
    with pytest.raises(ModelFileError, match="no stage-2 network"):
        train_stage(cases, tiny_preset, refinement_config(), tmp_path / "x.pt", init_model=stage1_file)
    with pytest.raises(InputError, match="no refinement stage"):
        train_stage(
            cases,
            replace(tiny_preset, stage3=None),
            refinement_config(),
            tmp_path / "x.pt",
            init_model=two_stage_file,
        )


def test_resumed_run_equals_uninterrupted_run(cases, tiny_preset, tmp_path):
    straight = tmp_path / "straight.pt"
    train_stage(cases, tiny_preset, config(1, 2), straight)
    ckpt = tmp_path / "run.ckpt"
    cancel = CancelToken()

    def cancel_after_first_epoch(fraction, message):
        if ckpt.exists():  # the first epoch's checkpoint is written: stop now
            cancel.cancel()

    with pytest.raises(Cancelled):
        train_stage(
            cases,
            tiny_preset,
            config(1, 2),
            tmp_path / "resumed.pt",
            ckpt,
            progress=cancel_after_first_epoch,
            cancel=cancel,
        )
    assert load_model_file(ckpt, CHECKPOINT_KIND).tensors["epoch"] == 1
    train_stage(cases, tiny_preset, config(1, 2), tmp_path / "resumed.pt", ckpt)
    a = load_model_file(straight, "knee-model").tensors["stage1"]
    b = load_model_file(tmp_path / "resumed.pt", "knee-model").tensors["stage1"]
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), atol=1e-6), key


def test_checkpoint_of_another_configuration_is_refused(cases, tiny_preset, tmp_path):
    ckpt = tmp_path / "a.ckpt"
    train_stage(cases, tiny_preset, config(1, 1), tmp_path / "a.pt", ckpt)
    other = config(1, 1)
    other.loss = "l2"
    with pytest.raises(InputError, match="a.ckpt'?: was written with other training settings; delete it"):
        train_stage(cases, tiny_preset, other, tmp_path / "b.pt", ckpt)


def test_stage2_needs_stage1(cases, tiny_preset, tmp_path):
    with pytest.raises(InputError, match="stage-1 model"):
        train_stage(cases, tiny_preset, config(2, 1), tmp_path / "x.pt")


def test_fold_split_partitions():
    folds = [fold_split(23, 5, k, seed=4) for k in range(5)]
    vals = np.concatenate([v for _, v in folds])
    assert sorted(vals.tolist()) == list(range(23))
    for train, val in folds:
        assert not set(train) & set(val) and len(train) + len(val) == 23


def test_kneel_table_maps_roi_points_back_to_the_full_image(tmp_path):
    import SimpleITK as sitk  # noqa: N813
    from LandmarkCoreLib.datasets import kneel_image_to_roi

    header = "subject_id,side,kl,tibia,femur,bbox,center\n"
    tibia = ",".join(f"{10 + 5 * i},{200 + i}" for i in range(9))
    femur = ",".join(f"{20 + 5 * i},{150 + i}" for i in range(7))
    rows = [f'42,{side},2,"{tibia}","{femur}","300,120,766,586","533,353"\n' for side in ("R", "L")]
    (tmp_path / "table.csv").write_text(header + "".join(rows))
    (tmp_path / "images").mkdir()
    sitk.WriteImage(sitk.Image([900, 700], sitk.sitkUInt8), str(tmp_path / "images" / "42.png"))
    cases = resolve_training_cases(f"kneel:{tmp_path / 'table.csv'}:{tmp_path / 'images'}", spacing_mm=0.15)
    assert [c.mirror for c in cases] == [False, True]
    for case, side in zip(cases, ("R", "L"), strict=True):
        pixels = case.landmarks.points / 0.15
        roi = kneel_image_to_roi(pixels, np.array([300, 120, 766, 586]), side, image_spacing_mm=0.15)
        np.testing.assert_allclose(roi[0], [10, 200], atol=1e-6)
        np.testing.assert_allclose(roi[9], [20, 150], atol=1e-6)


@pytest.mark.realdata
def test_isbi_training_spec_chooses_the_annotator(data_root):
    senior, mean = resolve_training_cases("isbi:train"), resolve_training_cases("isbi:train:mean")
    assert len(senior) == len(mean) == 150 and senior[0].image_path == mean[0].image_path
    moved = np.linalg.norm(mean[0].landmarks.points - senior[0].landmarks.points, axis=1)
    assert 0 < moved.max() < 10 and senior[0].spacing == (0.1, 0.1)
    with pytest.raises(InputError, match="'typo' is not one of senior, junior, mean"):
        resolve_training_cases("isbi:train:typo")
