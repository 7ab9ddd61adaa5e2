"""Settings derived from the structure's size and the voxel size; the cost model refuses what won't fit."""

from __future__ import annotations

import numpy as np
import pytest
from LandmarkCoreLib.errors import InputError
from OneShotLandmarksLib.config import DetectionConfig, TrainingConfig
from OneShotLandmarksLib.sampling import cube_size
from OneShotLandmarksLib.scaling import (
    Scale,
    derive_detection,
    derive_training,
    estimate_cost,
    refuse_if_too_costly,
)

MOUSE = Scale(11.57, 0.1411)  # C57BL6_J_ skull mask, micro-CT voxels
HUMAN_HEAD = Scale(137.1, 1.0)  # MNI152 head mask (Otsu), 1 mm MRI


def _resolved(scale: Scale, training: TrainingConfig | None = None, detection: DetectionConfig | None = None):
    return (
        derive_training(training or TrainingConfig(), scale)[0],
        derive_detection(detection or DetectionConfig(), scale)[0],
    )


def test_mouse_skull_gets_the_tuned_mouse_figures():
    training, detection = _resolved(MOUSE)
    assert (training.working_spacing_mm, training.max_translation_mm, training.margin_mm) == (1.0, 3.0, 1.0)
    assert detection.registration_spacing_mm == 0.28
    assert detection.demons_spacings_mm == [0.56, 0.28]
    assert (detection.shift_threshold_mm, detection.registration_margin_mm) == (0.5, 2.0)


def test_lengths_scale_with_the_structure_and_the_cube_keeps_its_voxel_count():
    mouse_training, _ = _resolved(MOUSE)
    training, detection = _resolved(HUMAN_HEAD)
    assert training.working_spacing_mm == pytest.approx(12.0)
    assert detection.registration_spacing_mm == 2.0  # two voxels: finer than the scale, never below one
    mouse_cube = cube_size(MOUSE.soi_radius_mm, 3.0, 1.0, mouse_training.working_spacing_mm)
    human_cube = cube_size(
        HUMAN_HEAD.soi_radius_mm, training.max_translation_mm, training.margin_mm, training.working_spacing_mm
    )
    assert abs(human_cube - mouse_cube) <= 2


def test_explicit_settings_override_and_only_missing_ones_are_reported_derived():
    training, derived = derive_training(TrainingConfig(working_spacing_mm=4.0), HUMAN_HEAD)
    assert training.working_spacing_mm == 4.0 and "working_spacing_mm" not in derived
    assert sorted(derived) == ["margin_mm", "max_translation_mm"]
    detection, _ = derive_detection(DetectionConfig(registration_spacing_mm=1.0), HUMAN_HEAD)
    assert detection.demons_spacings_mm == [2.0, 1.0]


def test_issue_case_mouse_lengths_on_a_human_head_are_refused_naming_the_setting():
    training = TrainingConfig(
        working_spacing_mm=1.0, max_translation_mm=3.0, margin_mm=1.0, memory_limit_gb=4
    )
    training, detection = _resolved(HUMAN_HEAD, training)
    cube = cube_size(HUMAN_HEAD.soi_radius_mm, 3.0, 1.0, 1.0)
    cost = estimate_cost(training, detection, cube, 193 * 229 * 193, np.array([90.0, 110, 70]), threads=2)
    assert cost.training_bytes > 10 * 2**30  # the issue saw 12 GB within minutes
    with pytest.raises(InputError, match="working_spacing_mm"):
        refuse_if_too_costly(cost, training)


def test_derived_human_settings_fit_four_gigabytes_and_fifteen_minutes():
    training, detection = _resolved(
        HUMAN_HEAD, TrainingConfig(width=32, memory_limit_gb=4, time_limit_minutes=15)
    )
    cube = cube_size(
        HUMAN_HEAD.soi_radius_mm, training.max_translation_mm, training.margin_mm, training.working_spacing_mm
    )
    cost = estimate_cost(training, detection, cube, 193 * 229 * 193, np.array([90.0, 110, 70]), threads=2)
    refuse_if_too_costly(cost, training)
    assert cost.training_bytes < 4 * 2**30


def test_a_long_run_is_refused_naming_the_time_limit():
    training, detection = _resolved(MOUSE, TrainingConfig(max_epochs=5000, time_limit_minutes=10))
    cost = estimate_cost(training, detection, 36, 170**3, np.array([15.0, 14, 15]), threads=2)
    with pytest.raises(InputError, match="time_limit_minutes"):
        refuse_if_too_costly(cost, training)
