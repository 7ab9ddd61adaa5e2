"""Synthetic fixtures of the knee (KNEEL) tests: a tiny preset and blob images with landmarks."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk  # noqa: N813
from KneeLandmarksLib.presets import Preset, StageGeometry
from LandmarkCoreLib.landmarks import LandmarkSet, write_landmarks

TINY = Preset(
    name="tiny",
    landmark_names=("left blob", "right blob"),
    stage1=StageGeometry(2.0, (32, 32)),
    stage2=StageGeometry(1.0, (32, 32)),
    width=4,
    depth=2,
    stage3=StageGeometry(0.5, (32, 32)),
    stage3_depth=2,
)


def blob_image(points_px: np.ndarray, size: int = 64, spacing: float = 1.0) -> sitk.Image:
    rows, cols = np.mgrid[0:size, 0:size]
    # A smooth background ramp, as on a film: a constant edge band reads as a truncated file and is refused.
    array = (20 + 30 * (rows + cols) / (2 * size)).astype(np.float32)
    for x, y in points_px:
        array += 200 * np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / 8.0)
    image = sitk.GetImageFromArray(np.clip(array, 0, 255).astype(np.uint8))
    image.SetSpacing((spacing, spacing))
    return image


@pytest.fixture(scope="session")
def tiny_preset() -> Preset:
    return TINY


@pytest.fixture(scope="session")
def blob_dataset(tmp_path_factory):
    """Eight 64x64 PNGs (1 mm pixels) with two blobs each and their .mrk.json files."""
    root = tmp_path_factory.mktemp("blobs")
    (root / "images").mkdir()
    (root / "landmarks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        centre = rng.uniform(26, 38, 2)
        points = np.array([centre - [8, 0], centre + [8, 0]])
        sitk.WriteImage(blob_image(points), str(root / "images" / f"case{i}.png"))
        write_landmarks(
            root / "landmarks" / f"case{i}.mrk.json", LandmarkSet(list(TINY.landmark_names), points)
        )
    return root
