"""Synthetic volumes for the one-shot unit tests."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from OneShotLandmarksLib.config import TrainingConfig

#: Training small enough for a unit test on the synthetic object (its other settings are the defaults).
TINY_TRAINING = TrainingConfig(
    width=8, working_spacing_mm=2.0, batch_size=16, max_epochs=6, patience=10, learning_rate=1e-2
)
#: a quarter turn about z
QUARTER_TURN = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])


def image_from(array: np.ndarray, spacing: float = 1.0, origin=(0.0, 0.0, 0.0)) -> sitk.Image:
    image = sitk.GetImageFromArray(array.astype(np.float32))
    image.SetSpacing([spacing] * 3)
    image.SetOrigin([float(v) for v in origin])
    return image


def physical_grid(shape: tuple[int, int, int], spacing: float = 1.0) -> np.ndarray:
    """(z, y, x, 3) physical x, y, z coordinates of an axis-aligned grid with origin 0."""
    zz, yy, xx = np.meshgrid(*(np.arange(n) * spacing for n in shape), indexing="ij")
    return np.stack([xx, yy, zz], axis=-1)


def object_grid(size: int) -> tuple[tuple[int, int, int], np.ndarray]:
    """The shape of a ``size``³ grid of 1 mm voxels and a centre for the object near its middle, off the
    voxel lattice."""
    half = size / 2
    return (size, size, size), np.array([half, half - 1.0, half + 0.5])


def asymmetric_object(
    points: np.ndarray, centre: np.ndarray, rotation: np.ndarray | None = None
) -> np.ndarray:
    """A soft ellipsoid (semi-axes 9, 5, 3 mm) with an off-axis knob, no symmetry; in [0, 1]."""
    local = (points - centre) @ (np.eye(3) if rotation is None else rotation)  # object coordinates
    body = np.sum((local / np.array([9.0, 5.0, 3.0])) ** 2, axis=-1)
    knob = np.sum((local - np.array([5.0, 3.5, 1.5])) ** 2, axis=-1) / 2.5**2
    return np.clip(np.maximum(1.5 - body, 1.5 - knob), 0, 1)


def object_and_soi(
    shape: tuple[int, int, int], centre: np.ndarray, rotation: np.ndarray | None = None
) -> tuple[sitk.Image, sitk.Image]:
    """The :func:`object_image` and its structure of interest (object > 0.5)."""
    array = asymmetric_object(physical_grid(shape), centre, rotation)
    return image_from(array), image_from((array > 0.5).astype(np.float32))


def object_image(
    shape: tuple[int, int, int], centre: np.ndarray, rotation: np.ndarray | None = None
) -> sitk.Image:
    """The :func:`asymmetric_object` on an axis-aligned grid of ``shape`` (1 mm voxels, origin 0)."""
    return image_from(asymmetric_object(physical_grid(shape), centre, rotation))


def stand_in_predictor(slices: np.ndarray) -> np.ndarray:
    """A 'network' that segments bright voxels: what the trained U-Net does on the real data."""
    return 1.0 / (1.0 + np.exp(-(slices - 0.5) * 12.0))


def smooth_texture(shape: tuple[int, int, int], seed: int = 0, sigma: float = 2.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = sitk.GetImageFromArray(rng.normal(size=shape).astype(np.float32))
    array = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(noise, sigma))
    return (array - array.min()) / (array.max() - array.min())
