"""A detection checks scale and handedness from the image content: a slice thickness read 3x wrong and a
header mirrored by mistake are refused with a typed error, a left-handed voxel grid works as any other."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from LandmarkCoreLib.errors import InputError
from LandmarkCoreLib.landmarks import LandmarkSet
from OneShotLandmarksLib.config import DetectionConfig
from OneShotLandmarksLib.pipeline import detect_landmarks, train_model
from OneShotLandmarksLib.plausibility import handedness_warnings, require_plausible_scale, symmetry_mirror
from OneShotLandmarksLib.sampling import PatchGrid
from synthetic import (
    QUARTER_TURN,
    TINY_TRAINING,
    object_and_soi,
)

SHAPE = (40, 40, 40)
CENTRE = np.array([20.0, 19.0, 20.5])
DETECTION = DetectionConfig(
    registration_spacing_mm=1.0, demons_iterations=[5, 5], linear_iterations=40, max_iterations=3
)


def _volume(rotation=None):
    return object_and_soi(SHAPE, CENTRE, rotation)


def _landmarks(rotation: np.ndarray | None = None) -> LandmarkSet:
    offsets = np.array([[4.0, 0, 0], [0, 2, 0], [-3, 0, 1], [5, 3, 1.5]])
    return LandmarkSet(
        ["a", "b", "c", "knob"], CENTRE + offsets @ (np.eye(3) if rotation is None else rotation).T
    )


@pytest.fixture(scope="module")
def model():
    reference, reference_soi = _volume()
    validation, validation_soi = _volume(QUARTER_TURN)
    return train_model(
        reference, _landmarks(), reference_soi, validation, validation_soi, TINY_TRAINING, DETECTION
    )


def _left_handed(image: sitk.Image) -> sitk.Image:
    """The same physical image on a grid whose x axis runs the other way (direction determinant -1)."""
    flipped = sitk.Flip(image, [True, False, False])
    flipped.SetDirection([-1.0, 0, 0, 0, 1, 0, 0, 0, 1])
    flipped.SetOrigin(image.TransformIndexToPhysicalPoint([image.GetSize()[0] - 1, 0, 0]))
    return flipped


def test_model_records_what_was_derived(model):
    assert "max_translation_mm" in model.derivation["derived"]
    assert "working_spacing_mm" not in model.derivation["derived"]  # given explicitly
    assert model.derivation["soi_radius_mm"] > 5 and model.training.max_translation_mm > 0


def test_left_handed_voxel_grid_is_detected_like_any_other(model):
    target, _ = _volume(QUARTER_TURN)
    flipped = _left_handed(target)
    assert np.linalg.det(np.reshape(flipped.GetDirection(), (3, 3))) < 0
    result = detect_landmarks(model, flipped, device="cpu")
    errors = np.linalg.norm(result.landmarks.points - _landmarks(QUARTER_TURN).points, axis=1)
    assert errors.max() < 2.0, errors


def test_handedness_gate_on_measured_correlations():
    """The decision rule on measured registration correlations (as read, through the reflection): the
    mirrored-header copy of the human template (benchmarks/oneshot_human_benchmark.py) is refused, the
    template as read is confirmed; near-symmetric mouse skulls (B6D2F1_J_, NU_J_, 129S1_SVLMJ_ read
    correctly; 129S1_SVLMJ_ with its header mirrored) are neither refused nor confirmed: a warning."""
    assert handedness_warnings(0.996, 0.886) == []
    for as_read, mirrored in ((0.636, 0.658), (0.628, 0.637), (0.601, 0.600), (0.575, 0.612)):
        (warning,) = handedness_warnings(as_read, mirrored)
        assert "handedness could not be confirmed from the image content" in warning
        assert f"{as_read:.3f} as read vs {mirrored:.3f} through a reflection" in warning
    with pytest.raises(InputError, match="mirrored"):
        handedness_warnings(0.887, 0.996)


def test_handedness_of_the_synthetic_object_confirmed_as_read_and_refused_mirrored(model):
    """Measured: 0.999 as read vs 0.929 through the reflection (confirmed); with the header mirrored
    (voxels flipped along i, header kept) the mirror image of that, 0.999 through the reflection vs 0.927
    as read: refused. (With the package versions of session 3 the mirrored copy's reflected registration
    stopped at 0.938, a warning; the decision rule on near-ties is tested on measured correlations above.)"""
    target, _ = _volume(QUARTER_TURN)
    result = detect_landmarks(model, target, device="cpu")
    assert result.warnings == [] and result.log()["warnings"] == []
    mirrored = sitk.Flip(target, [True, False, False])
    mirrored.CopyInformation(target)
    with pytest.raises(InputError, match="mirrored left-right"):
        detect_landmarks(model, mirrored, device="cpu")


def test_slice_thickness_read_three_times_too_large_is_refused(model):
    target, _ = _volume(QUARTER_TURN)
    target.SetSpacing([1.0, 1.0, 3.0])
    target.SetOrigin([0.0, 0.0, -40.0])
    with pytest.raises(InputError, match="voxel spacing"):
        detect_landmarks(model, target, device="cpu")


def test_scale_gate_bounds():
    require_plausible_scale(np.array([0.9, 1.0, 1.2]), 1.5)
    with pytest.raises(InputError, match="max_scale_ratio"):
        require_plausible_scale(np.array([1.0, 1.0, 1.7]), 1.5)
    with pytest.raises(InputError, match="max_scale_ratio"):
        require_plausible_scale(np.array([0.6, 1.0, 1.0]), 1.5)


def test_symmetry_mirror_finds_the_plane_of_a_bilateral_object():
    grid = PatchGrid(np.zeros(3), np.eye(3), 1.0, (32, 32, 32))
    points = grid.voxel_coordinates()
    body = np.sum((points / np.array([10.0, 6.0, 4.0])) ** 2, axis=-1) < 1  # ellipsoid, symmetric in x, y, z
    bumps = np.sum((np.abs(points) - np.array([5.0, 0, 3.0])) ** 2, axis=-1) < 4  # paired in x, not in y
    front = np.sum((points - np.array([0.0, 5, 2])) ** 2, axis=-1) < 6  # breaks the y and z symmetry
    patch = (body | bumps | front).astype(np.float32)
    mirror = symmetry_mirror(patch, body, grid)
    np.testing.assert_allclose(np.abs(mirror), np.diag([1.0, 1, 1]), atol=1e-6)
    assert mirror[0, 0] == pytest.approx(-1.0)
