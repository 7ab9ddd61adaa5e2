"""Posed, mildly warped copies of an annotated image with its landmarks moved by the same transform: a
validation image when only one annotated image exists, and targets whose true landmarks are known.

The copy is ``copy(y) = image(W(A(y)))``: ``A`` rigid (target -> source), ``W(u) = u + d(u)`` a smooth random
displacement in the source. A landmark ``l`` moves to ``y = A^-1(u)`` with ``u + d(u) = l`` (fixed point).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from LandmarkCoreLib.landmarks import LandmarkSet


@dataclass(frozen=True)
class PoseRecipe:
    max_rotation_deg: float = 45.0
    max_translation_mm: float = 20.0
    warp_mm: float = 2.0  # largest displacement of the warp
    warp_smoothness_mm: float = 25.0  # Gaussian scale of the warp
    spacing_mm: tuple[float, float, float] = (1.0, 1.0, 1.0)
    left_handed_grid: bool = False  # voxel grid with direction determinant -1 (same anatomy)
    noise_fraction: float = 0.01  # Gaussian noise, of the 99th intensity percentile


def _random_rigid(rng: np.random.Generator, recipe: PoseRecipe, centre: np.ndarray) -> sitk.Euler3DTransform:
    angles = np.radians(rng.uniform(-1, 1, 3) * recipe.max_rotation_deg)
    rigid = sitk.Euler3DTransform()
    rigid.SetCenter([float(v) for v in centre])
    rigid.SetRotation(*[float(a) for a in angles])
    rigid.SetTranslation([float(v) for v in rng.uniform(-1, 1, 3) * recipe.max_translation_mm])
    return rigid


def _random_warp(rng: np.random.Generator, image: sitk.Image, recipe: PoseRecipe) -> sitk.Image:
    """A smooth displacement field (mm) on a 4 mm grid over the image, largest length ``warp_mm``."""
    extent = np.asarray(image.GetSize()) * np.asarray(image.GetSpacing())
    size = [int(np.ceil(e / 4.0)) + 1 for e in extent]
    components = []
    for _ in range(3):
        noise = sitk.GetImageFromArray(rng.normal(size=size[::-1]).astype(np.float64))
        components.append(
            sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(noise, recipe.warp_smoothness_mm / 4))
        )
    field = np.stack(components, axis=-1)
    field *= recipe.warp_mm / max(np.linalg.norm(field, axis=-1).max(), 1e-12)
    warp = sitk.GetImageFromArray(field.astype(np.float64), isVector=True)
    warp.SetSpacing([4.0] * 3)
    warp.SetOrigin(image.GetOrigin())
    warp.SetDirection(image.GetDirection())
    return warp


def _content_corners(image: sitk.Image) -> list[tuple[float, ...]]:
    """Physical corners of the index box holding the image's content (values above 5 % of its 99th
    percentile), so that the copy's grid is not mostly empty."""
    values = sitk.GetArrayViewFromImage(image)
    inside = np.argwhere(values > 0.05 * np.percentile(values, 99))[:, ::-1]
    low, high = inside.min(0), inside.max(0)
    return [
        image.TransformIndexToPhysicalPoint([int(v) for v in np.where(b, high, low)])
        for b in np.ndindex(2, 2, 2)
    ]


def _target_grid(image: sitk.Image, rigid: sitk.Euler3DTransform, recipe: PoseRecipe) -> sitk.Image:
    """A grid covering the posed copy of the image's content, 5 mm around."""
    inverse = rigid.GetInverse()
    corners = _content_corners(image)
    posed = np.array([inverse.TransformPoint(c) for c in corners])
    spacing = np.asarray(recipe.spacing_mm, float)
    low, high = posed.min(0) - 5.0, posed.max(0) + 5.0
    grid = sitk.Image([int(v) for v in np.ceil((high - low) / spacing) + 1], sitk.sitkUInt8)
    grid.SetSpacing([float(v) for v in spacing])
    direction, origin = np.eye(3), low
    if recipe.left_handed_grid:
        direction = np.diag([-1.0, 1.0, 1.0])
        origin = np.array([high[0], low[1], low[2]])
    grid.SetDirection([float(v) for v in direction.ravel()])
    grid.SetOrigin([float(v) for v in origin])
    return grid


def moved_landmarks(
    landmarks: LandmarkSet, rigid: sitk.Transform, warp: sitk.Image, iterations: int = 50
) -> LandmarkSet:
    field = sitk.DisplacementFieldTransform(sitk.Image(warp))
    inverse = rigid.GetInverse()
    moved = []
    for point in np.asarray(landmarks.points, float):
        u = point.copy()
        for _ in range(iterations):
            u = point - (np.asarray(field.TransformPoint([float(v) for v in u])) - u)
        moved.append(inverse.TransformPoint([float(v) for v in u]))
    return LandmarkSet(list(landmarks.labels), np.array(moved), landmarks.descriptions, landmarks.name)


def posed_copy(
    image: sitk.Image, landmarks: LandmarkSet, seed: int, recipe: PoseRecipe = PoseRecipe()
) -> tuple[sitk.Image, LandmarkSet, dict]:
    """A randomly posed, warped, noisy copy of ``image`` on a new grid, the landmarks moved with it, and
    the pose drawn (Euler angles in degrees, translation in mm)."""
    rng = np.random.default_rng(seed)
    centre = np.asarray(image.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in image.GetSize()]))
    rigid = _random_rigid(rng, recipe, centre)
    warp = _random_warp(rng, image, recipe)
    composite = sitk.CompositeTransform([sitk.DisplacementFieldTransform(sitk.Image(warp)), rigid])
    grid = _target_grid(image, rigid, recipe)
    copy = sitk.Resample(
        sitk.Cast(image, sitk.sitkFloat32), grid, composite, sitk.sitkLinear, 0.0, sitk.sitkFloat32
    )
    values = sitk.GetArrayViewFromImage(copy)
    noise = rng.normal(scale=recipe.noise_fraction * float(np.percentile(values, 99)), size=values.shape)
    noisy = sitk.GetImageFromArray((values + noise).astype(np.float32))
    noisy.CopyInformation(copy)
    pose = {
        "angles_deg": np.degrees([rigid.GetAngleX(), rigid.GetAngleY(), rigid.GetAngleZ()]).round(1).tolist(),
        "translation_mm": np.round(rigid.GetTranslation(), 1).tolist(),
    }
    return noisy, moved_landmarks(landmarks, rigid, warp), pose
