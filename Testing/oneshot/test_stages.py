"""Each stage recovers a known synthetic transformation (Sec. 2.3-2.4)."""

from __future__ import annotations

import numpy as np
import pytest
from OneShotLandmarksLib.config import DetectionConfig
from OneShotLandmarksLib.localization import SOINotFoundError, localize
from OneShotLandmarksLib.orientation import (
    candidate_rotations,
    normalised_cross_correlation,
    rotation_angle_deg,
    second_moments,
)
from OneShotLandmarksLib.registration import register, transport_points
from OneShotLandmarksLib.sampling import PatchGrid, pose_transform, resample
from scipy.spatial.transform import Rotation
from synthetic import (
    asymmetric_object,
    image_from,
    object_grid,
    object_image,
    physical_grid,
    smooth_texture,
    stand_in_predictor,
)

SHAPE, CENTRE = object_grid(48)


def test_localization_recovers_translation_within_one_voxel():
    shift = np.array([4.3, -3.1, 2.2])
    target = object_image(SHAPE, CENTRE + shift)
    grid = PatchGrid(CENTRE, np.eye(3), 1.0, (28, 28, 28))
    found = localize(
        stand_in_predictor,
        target,
        CENTRE,
        grid,
        max_iterations=10,
        shift_threshold_mm=0.05,
        min_mass_mm3=10.0,
    )
    truth_centre, _ = second_moments(
        asymmetric_object(physical_grid(SHAPE), CENTRE + shift), physical_grid(SHAPE)
    )
    assert len(found.iterations) >= 2 and found.converged
    assert np.linalg.norm(found.centre - truth_centre) < 1.0  # voxel = 1 mm
    assert np.linalg.norm(found.centre - CENTRE) > 4.0  # it did move


def test_localization_reports_missing_structure():
    empty = image_from(np.zeros(SHAPE))
    grid = PatchGrid(CENTRE, np.eye(3), 1.0, (28, 28, 28))
    with pytest.raises(SOINotFoundError, match="not found"):
        localize(stand_in_predictor, empty, CENTRE, grid, 5, 0.1, min_mass_mm3=10.0)


@pytest.mark.parametrize("euler", [(0, 0, 150), (70, -40, 100), (-120, 60, -30)])
def test_rotation_recovered_within_three_degrees(euler):
    true_rotation = Rotation.from_euler("xyz", euler, degrees=True).as_matrix()  # reference -> target
    target_centre = CENTRE + np.array([1.0, -1.0, 0.5])
    reference = object_image(SHAPE, CENTRE)
    # reference point p <-> target point R (p - c) + c': the target object's axes are R's columns
    target = object_image(SHAPE, target_centre, true_rotation)
    grid = PatchGrid(CENTRE, np.eye(3), 1.0, (36, 36, 36))
    reference_patch = resample(reference, grid)
    _, reference_cov = second_moments(reference_patch, grid.voxel_coordinates())
    target_grid = PatchGrid(target_centre, np.eye(3), 1.0, (36, 36, 36))
    found_centre, target_cov = second_moments(
        stand_in_predictor(resample(target, target_grid)), target_grid.voxel_coordinates()
    )

    def similarity(rotation):
        moved = resample(target, grid, pose_transform(rotation, CENTRE, found_centre))
        return normalised_cross_correlation(moved, reference_patch)

    candidates = candidate_rotations(reference_cov, target_cov)
    assert all(abs(np.linalg.det(r) - 1) < 1e-6 for r in candidates)
    rotation = max(candidates, key=similarity)
    assert rotation_angle_deg(rotation, true_rotation) < 3.0


def test_near_equal_eigenvalues_give_both_axis_orders():
    reference = np.diag([1.0, 1.05, 4.0])
    target = np.diag([1.05, 1.0, 4.0])
    orders = candidate_rotations(reference, target, near_equal_ratio=1.15)
    assert len(orders) == 8  # 4 proper sign choices x 2 orders of the near-equal axes
    assert len(candidate_rotations(np.diag([1.0, 2.0, 4.0]), np.diag([1.0, 2.0, 4.0]))) == 4


def test_demons_transports_landmarks_through_smooth_warp_within_half_voxel():
    shape = (40, 40, 40)
    points = physical_grid(shape)
    texture = smooth_texture(shape, seed=3, sigma=1.5)
    moving = image_from(texture)  # the reference patch

    def warp(p):  # true fixed -> moving map u(x) = x + d(x), smooth, up to 1.5 mm
        return np.stack(
            [
                1.5 * np.sin(2 * np.pi * p[..., 1] / 40),
                1.2 * np.sin(2 * np.pi * p[..., 2] / 40),
                1.0 * np.cos(2 * np.pi * p[..., 0] / 40),
            ],
            axis=-1,
        )

    import SimpleITK as sitk

    field = sitk.GetImageFromArray(warp(points), isVector=True)
    field = sitk.Cast(field, sitk.sitkVectorFloat64)
    fixed = sitk.Resample(moving, moving, sitk.DisplacementFieldTransform(field), sitk.sitkBSpline, 0.0)
    truth_fixed = np.random.default_rng(0).uniform(12, 28, (15, 3))
    landmarks_moving = truth_fixed + warp(truth_fixed)
    config = DetectionConfig(
        linear_transform="rigid",
        demons_spacings_mm=[2.0, 1.0],
        demons_iterations=[60, 60],
        demons_smoothing_voxels=1.5,
        linear_shrink_factors=[2, 1],
    )
    found = transport_points(landmarks_moving, register(fixed, moving, config))
    error = np.linalg.norm(found - truth_fixed, axis=1)
    assert np.linalg.norm(landmarks_moving - truth_fixed, axis=1).mean() > 1.0  # the warp matters
    assert error.mean() < 0.5, error


def test_localization_refuses_a_diffuse_probability_map():
    target = object_image(SHAPE, CENTRE)
    grid = PatchGrid(CENTRE, np.eye(3), 1.0, (28, 28, 28))
    found = localize(
        stand_in_predictor, target, CENTRE, grid, 3, 0.1, 10.0, soi_voxels=500, min_concentration=5.0
    )
    assert found.iterations[-1]["concentration"] > 5.0
    with pytest.raises(SOINotFoundError, match="diffuse"):
        localize(
            lambda s: np.full(s.shape, 0.7), target, CENTRE, grid, 3, 0.1, 10.0, 500, min_concentration=5.0
        )


def test_localization_flags_a_drifting_centre_and_keeps_the_first_patch():
    """A map that is brighter on one side everywhere (as a weakly trained net gives) pulls the barycentre
    the same way at every step: the result must say it did not converge and keep the first patch."""
    ramp = np.broadcast_to(np.linspace(0.0, 2.0, 120), (*SHAPE[:2], 120))  # no edge within reach
    start = np.array([40.0, 23.0, 24.5])
    grid = PatchGrid(start, np.eye(3), 1.0, (28, 28, 28))
    found = localize(stand_in_predictor, image_from(ramp), start, grid, 4, 0.5, min_mass_mm3=10.0)
    assert not found.converged
    assert [it["shift_mm"] > 0.5 for it in found.iterations] == [True] * 4
    np.testing.assert_allclose(found.start_grid.centre, start)
    assert found.start_probability.shape == (28, 28, 28)
    assert found.centre[0] > start[0] + 2.0  # it drifted towards the bright side
