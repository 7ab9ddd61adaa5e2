"""Stage 4: multi-resolution linear (rigid or similarity) registration, then SimpleITK diffeomorphic
demons, of the reference patch (moving) onto the target patch (fixed), and landmark transport.

Direction of the transforms (the usual ITK convention): both map FIXED points to MOVING points,
``moving_point = linear(x + d(x))`` for a fixed (target) point ``x``. Reference landmarks live in the
moving image, so transporting them into the target means inverting that map; we do it per landmark by
the fixed-point iteration ``x <- u - d(x)`` with ``u = linear^-1(landmark)``, which converges for the
smooth, diffeomorphic fields demons produces.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from LandmarkCoreLib.progress import CancelToken, ProgressCallback, no_progress

from .config import DetectionConfig


@dataclass
class RegistrationResult:
    linear: sitk.Transform  # fixed -> moving
    displacement: sitk.Image | None  # on a fixed-space grid: x -> x + d(x) in linearly aligned moving space
    metric: float


def _grid_at(image: sitk.Image, spacing: float) -> sitk.Image:
    """An empty grid covering the same physical box as ``image`` at another isotropic spacing."""
    extent = np.asarray(image.GetSize()) * np.asarray(image.GetSpacing())
    size = [max(8, int(round(e / spacing))) for e in extent]
    grid = sitk.Image(size, sitk.sitkUInt8)
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    shift = direction @ (np.full(3, spacing / 2) - np.asarray(image.GetSpacing()) / 2)
    grid.SetOrigin([float(v) for v in np.asarray(image.GetOrigin()) + shift])
    grid.SetSpacing([float(spacing)] * 3)
    grid.SetDirection(image.GetDirection())
    return grid


def _at_spacing(image: sitk.Image, grid: sitk.Image, transform: sitk.Transform | None = None) -> sitk.Image:
    coarsening = grid.GetSpacing()[0] / image.GetSpacing()[0]
    if coarsening > 1.01:
        image = sitk.SmoothingRecursiveGaussian(image, 0.5 * grid.GetSpacing()[0])
    return sitk.Resample(image, grid, transform or sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)


def linear_registration(
    fixed: sitk.Image, moving: sitk.Image, config: DetectionConfig, seed: int = 0
) -> tuple[sitk.Transform, float]:
    """Multi-resolution rigid, similarity or affine registration by correlation; fixed -> moving."""
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsCorrelation()
    method.SetMetricSamplingStrategy(method.RANDOM)
    # SimpleITK reads seed 0 as sitkWallClock (a new seed every run): shift by one so that every
    # seed >= 0, the default 0 included, gives a reproducible sampling.
    method.SetMetricSamplingPercentage(0.25, seed + 1)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=1.0, minStep=1e-4, numberOfIterations=config.linear_iterations, relaxationFactor=0.6
    )
    method.SetOptimizerScalesFromPhysicalShift()
    levels = config.linear_shrink_factors
    method.SetShrinkFactorsPerLevel(levels)
    method.SetSmoothingSigmasPerLevel([max(f - 1, 0) * fixed.GetSpacing()[0] for f in levels])
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    transforms = {
        "rigid": sitk.VersorRigid3DTransform,
        "similarity": sitk.Similarity3DTransform,
        "affine": lambda: sitk.AffineTransform(3),
    }
    transform = transforms[config.linear_transform]()
    centre = fixed.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in fixed.GetSize()])
    transform.SetCenter(centre)
    method.SetInitialTransform(transform, inPlace=True)
    method.Execute(fixed, moving)
    return transform, float(method.GetMetricValue())


def demons_registration(
    fixed: sitk.Image,
    moving: sitk.Image,
    linear: sitk.Transform,
    config: DetectionConfig,
    cancel: CancelToken | None = None,
) -> sitk.Image | None:
    """Multi-resolution diffeomorphic demons of the linearly aligned moving image onto ``fixed``."""
    field = None
    for spacing, iterations in zip(config.demons_spacings_mm, config.demons_iterations, strict=True):
        if cancel:
            cancel.check()
        if iterations <= 0:
            continue
        grid = _grid_at(fixed, spacing)
        fixed_level = _at_spacing(fixed, grid)
        moving_level = sitk.HistogramMatching(_at_spacing(moving, grid, linear), fixed_level, 128, 7, True)
        demons = sitk.DiffeomorphicDemonsRegistrationFilter()
        demons.SetNumberOfIterations(iterations)
        demons.SetStandardDeviations(config.demons_smoothing_voxels)
        if field is None:
            field = demons.Execute(fixed_level, moving_level)
        else:
            initial = sitk.Resample(
                field, grid, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkVectorFloat64
            )
            field = demons.Execute(fixed_level, moving_level, initial)
    return field


def register(
    fixed: sitk.Image,
    moving: sitk.Image,
    config: DetectionConfig,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
    seed: int = 0,
) -> RegistrationResult:
    progress(None, "linear registration")
    linear, metric = linear_registration(fixed, moving, config, seed)
    progress(None, "demons registration")
    field = demons_registration(fixed, moving, linear, config, cancel)
    return RegistrationResult(linear, field, metric)


def transport_points(points: np.ndarray, result: RegistrationResult, iterations: int = 30) -> np.ndarray:
    """Moving-space (reference) points -> fixed-space (target patch) points, inverting fixed -> moving."""
    inverse = result.linear.GetInverse()
    targets = np.array([inverse.TransformPoint([float(v) for v in p]) for p in np.asarray(points, float)])
    if result.displacement is None:
        return targets
    warp = sitk.DisplacementFieldTransform(sitk.Image(result.displacement))
    out = targets.copy()
    for _ in range(iterations):
        displaced = np.array([warp.TransformPoint([float(v) for v in x]) for x in out]) - out
        out = targets - displaced
    return out
