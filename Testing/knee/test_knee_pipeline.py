"""detect_landmarks: the crop -> image -> physical coordinate chain, and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk  # noqa: N813
import torch
from KneeLandmarksLib.pipeline import KneeModel, detect_landmarks
from LandmarkCoreLib.errors import InputError
from LandmarkCoreLib.networks import KneelHourglass
from torch import nn


class CentreOracle(nn.Module):
    """Predicts the crop's centre pixel (plus ``shift`` pixels) for every landmark: a known answer for
    the geometry chain."""

    def __init__(self, n: int, size: tuple[int, int], shift: tuple[float, float] = (0.0, 0.0)) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, 1, 1, 1))
        centre = (np.array(size) - 1) / 2 + np.array(shift)
        self.coords = torch.tensor(
            (centre - KneelHourglass.cell_centre) / np.array(size), dtype=torch.float32
        )
        self.n = n

    def forward(self, x):
        return self.coords.expand(x.shape[0], self.n, 2)


def oracle_model(preset, stage3_shift: tuple[float, float] | None = None) -> KneeModel:
    stage3 = None if stage3_shift is None else CentreOracle(2, preset.stage3.size, stage3_shift)
    return KneeModel(
        preset,
        CentreOracle(1, preset.stage1.size),
        CentreOracle(2, preset.stage2.size),
        {"roi_prior_mm": [5.0, -3.0]},
        stage3=stage3,
    )


def smooth_pixels(size: tuple[int, ...], components: int = 1) -> np.ndarray:
    """A smooth pattern (the content check refuses blank images), shaped for GetImageFromArray."""
    rows, cols = np.mgrid[0 : size[1], 0 : size[0]]
    grey = (100 + 50 * np.sin(cols / 7.0) * np.cos(rows / 5.0)).astype(np.uint8)
    grey = grey.reshape((1,) * (len(size) - 2) + grey.shape)
    return np.repeat(grey[..., None], components, -1) if components > 1 else grey


def image_with_geometry(size=(80, 60), spacing=(0.5, 0.5), origin=(10.0, 20.0), components=1) -> sitk.Image:
    image = sitk.GetImageFromArray(smooth_pixels(size, components), isVector=components > 1)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    return image


def expected_centre(image: sitk.Image) -> np.ndarray:
    centre_index = (np.array(image.GetSize()) - 1) / 2
    return np.array(image.GetOrigin()) + centre_index * np.array(image.GetSpacing())


def test_two_stage_chain_lands_in_physical_space(tiny_preset):
    from dataclasses import replace

    preset = replace(tiny_preset, roi_offset_mm=(2.0, 1.0))
    image = image_with_geometry()
    landmarks = detect_landmarks(oracle_model(preset), image)
    assert landmarks.labels == list(preset.landmark_names)
    np.testing.assert_allclose(
        landmarks.points, np.tile(expected_centre(image) + [2.0, 1.0], (2, 1)), atol=0.3
    )


@pytest.mark.parametrize("mirror", [False, True])
def test_refinement_moves_each_landmark_by_its_patch_prediction(tiny_preset, mirror):
    """Stage 3 at 0.5 mm/px predicting 4 px right and 2 px down of each patch centre moves every
    stage-2 point by (2, 1) mm; in a mirrored patch "right" is the image's left."""
    image = image_with_geometry(spacing=(0.25, 0.25))
    model = oracle_model(tiny_preset, stage3_shift=(4.0, 2.0))
    two_stage = detect_landmarks(model, image, mirror=mirror, refine=False).points
    refined = detect_landmarks(model, image, mirror=mirror).points
    expected_shift = [-2.0 if mirror else 2.0, 1.0]
    np.testing.assert_allclose(refined - two_stage, np.tile(expected_shift, (2, 1)), atol=0.05)
    assert model.stages_description == "two stages + refinement"


def test_single_stage_uses_the_training_prior(tiny_preset):
    image = image_with_geometry()
    landmarks = detect_landmarks(oracle_model(tiny_preset), image, single_stage=True)
    np.testing.assert_allclose(landmarks.points[0], expected_centre(image) + [5.0, -3.0], atol=0.3)


def test_rgb_is_converted_with_a_notice(tiny_preset):
    notices = []
    detect_landmarks(oracle_model(tiny_preset), image_with_geometry(components=3), notice=notices.append)
    assert notices and "grey" in notices[0]


def test_single_slice_volume_is_accepted_many_slices_refused(tiny_preset):
    model = oracle_model(tiny_preset)
    one = sitk.GetImageFromArray(smooth_pixels((80, 60, 1)))
    assert len(detect_landmarks(model, one)) == 2
    with pytest.raises(InputError, match="12 slices"):
        detect_landmarks(model, sitk.Image([80, 60, 12], sitk.sitkUInt8))


def test_image_far_smaller_than_the_field_of_view_is_refused(tiny_preset):
    tiny = image_with_geometry(size=(40, 40), spacing=(0.1, 0.1))
    with pytest.raises(InputError, match="far smaller"):
        detect_landmarks(oracle_model(tiny_preset), tiny)


def test_pixel_size_scales_the_networks_view_but_not_the_output_space(tiny_preset):
    image = image_with_geometry(size=(80, 60), spacing=(1.0, 1.0), origin=(0.0, 0.0))
    plain = detect_landmarks(oracle_model(tiny_preset), image)
    scaled = detect_landmarks(oracle_model(tiny_preset), image, single_stage=True, pixel_size_mm=0.5)
    # the prior (5, -3) mm is 10, -6 pixels at 0.5 mm; output in the image's own 1.0-spaced space
    np.testing.assert_allclose(scaled.points[0], expected_centre(image) + [10.0, -6.0], atol=0.6)
    np.testing.assert_allclose(plain.points[0], expected_centre(image), atol=0.6)


def test_nominal_pixel_size_applies_to_images_without_one(tiny_preset):
    model = oracle_model(tiny_preset)
    model.config["nominal_pixel_size_mm"] = 0.5
    image = image_with_geometry(size=(80, 60), spacing=(1.0, 1.0), origin=(0.0, 0.0))
    notices = []
    points = detect_landmarks(model, image, single_stage=True, notice=notices.append).points
    np.testing.assert_allclose(points[0], expected_centre(image) + [10.0, -6.0], atol=0.6)
    assert any("0.5 mm" in n for n in notices)
