"""Oriented patch grids, resampling with SimpleITK, and the X/Y/Z slice stacks of a patch.

A :class:`PatchGrid` is an isotropic box of voxels centred on a physical point with its own axes
(``rotation``'s columns, in LPS). Arrays follow SimpleITK: ``array[z, y, x]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from LandmarkCoreLib.errors import InputError
from scipy.spatial.transform import Rotation


@dataclass
class PatchGrid:
    centre: np.ndarray  # (3,) physical mm
    rotation: np.ndarray  # (3, 3), columns = patch axes x, y, z in physical space
    spacing: float
    size: tuple[int, int, int]  # voxels along x, y, z

    @property
    def origin(self) -> np.ndarray:
        half = (np.asarray(self.size, float) - 1) / 2 * self.spacing
        return np.asarray(self.centre, float) - self.rotation @ half

    def image(self) -> sitk.Image:
        """An empty image with this geometry (a resampling reference)."""
        grid = sitk.Image([int(s) for s in self.size], sitk.sitkUInt8)
        grid.SetSpacing([float(self.spacing)] * 3)
        grid.SetOrigin([float(v) for v in self.origin])
        grid.SetDirection([float(v) for v in np.asarray(self.rotation, float).ravel()])
        return grid

    def to_physical(self, index: np.ndarray) -> np.ndarray:
        return np.asarray(index, float) * self.spacing @ self.rotation.T + self.origin

    def to_index(self, points: np.ndarray) -> np.ndarray:
        return (np.asarray(points, float) - self.origin) @ self.rotation / self.spacing

    def voxel_coordinates(self) -> np.ndarray:
        """Physical coordinates of every voxel, shape (z, y, x, 3)."""
        zz, yy, xx = np.meshgrid(*(np.arange(n) for n in self.size[::-1]), indexing="ij")
        return self.to_physical(np.stack([xx, yy, zz], axis=-1).reshape(-1, 3)).reshape(*zz.shape, 3)


def mask_centre_and_radius(mask: sitk.Image) -> tuple[np.ndarray, float]:
    """Centre of mass (mm) and the largest distance (mm) of a mask voxel from it."""
    index = np.argwhere(sitk.GetArrayViewFromImage(mask) > 0)[:, ::-1].astype(float)
    if len(index) == 0:
        raise InputError("SOI mask", "no foreground voxels")
    spacing, origin = np.asarray(mask.GetSpacing()), np.asarray(mask.GetOrigin())
    direction = np.asarray(mask.GetDirection()).reshape(3, 3)
    points = (index * spacing) @ direction.T + origin
    centre = points.mean(axis=0)
    return centre, float(np.linalg.norm(points - centre, axis=1).max())


def cube_size(soi_radius_mm: float, max_translation_mm: float, margin_mm: float, spacing: float) -> int:
    """Even edge (voxels) of a cube whose slices hold the SOI whatever its rotation and translation."""
    half = soi_radius_mm + np.sqrt(3) * max_translation_mm + margin_mm
    return int(2 * np.ceil(half / spacing))


def prepare_image(image: sitk.Image, spacing: float) -> sitk.Image:
    """Float image scaled to [0, ~1] by its 99.5th percentile, smoothed against aliasing at ``spacing``."""
    image = sitk.Cast(image, sitk.sitkFloat32)
    values = sitk.GetArrayViewFromImage(image)
    low, high = np.percentile(values[:: max(1, values.shape[0] // 32)], [0.5, 99.5])
    scaled = sitk.ShiftScale(image, -float(low), 1.0 / max(float(high - low), 1e-6))
    sigma = 0.5 * spacing
    if sigma > min(image.GetSpacing()):
        scaled = sitk.SmoothingRecursiveGaussian(scaled, sigma)
    return scaled


def resample(
    image: sitk.Image, grid: PatchGrid, transform: sitk.Transform | None = None, linear: bool = True
) -> np.ndarray:
    """Values of ``image`` at ``transform(grid voxel)``; outside the image -> 0 (air)."""
    out = sitk.Resample(
        image,
        grid.image(),
        transform or sitk.Transform(),
        sitk.sitkLinear if linear else sitk.sitkNearestNeighbor,
        0.0,
        sitk.sitkFloat32,
    )
    return sitk.GetArrayFromImage(out)


def slice_stacks(volume: np.ndarray) -> list[np.ndarray]:
    """Slices of a (z, y, x) volume along X, Y and Z: shapes (x, z, y), (y, z, x), (z, y, x)."""
    return [volume.transpose(2, 0, 1), volume.transpose(1, 0, 2), volume]


def restack(stacks: list[np.ndarray]) -> list[np.ndarray]:
    """Inverse of :func:`slice_stacks` for each direction: all back to (z, y, x)."""
    return [stacks[0].transpose(1, 2, 0), stacks[1].transpose(1, 0, 2), stacks[2]]


def random_pose(
    rng: np.random.Generator, max_rotation_deg: float, max_translation_mm: float
) -> tuple[np.ndarray, np.ndarray]:
    """R, T of Algorithm 1: uniform angles in ±ΔR per axis, uniform shifts in ±ΔT per axis."""
    angles = rng.uniform(-1, 1, 3) * max_rotation_deg
    return Rotation.from_euler("xyz", angles, degrees=True).as_matrix(), rng.uniform(
        -1, 1, 3
    ) * max_translation_mm


def image_axes(image: sitk.Image) -> np.ndarray:
    return np.asarray(image.GetDirection(), float).reshape(3, 3)


def pose_transform(
    rotation: np.ndarray, source_centre: np.ndarray, target_centre: np.ndarray
) -> sitk.AffineTransform:
    """y = R (x - source_centre) + target_centre, as a SimpleITK transform (maps source to target)."""
    transform = sitk.AffineTransform(3)
    transform.SetMatrix([float(v) for v in np.asarray(rotation, float).ravel()])
    transform.SetCenter([float(v) for v in source_centre])
    transform.SetTranslation([float(v) for v in np.asarray(target_centre) - np.asarray(source_centre)])
    return transform


def apply_pose(
    points: np.ndarray, rotation: np.ndarray, source_centre: np.ndarray, target_centre: np.ndarray
) -> np.ndarray:
    return (np.asarray(points, float) - source_centre) @ np.asarray(rotation).T + target_centre


def invert_pose(
    points: np.ndarray, rotation: np.ndarray, source_centre: np.ndarray, target_centre: np.ndarray
) -> np.ndarray:
    return (np.asarray(points, float) - target_centre) @ np.asarray(rotation) + source_centre
