"""Algorithm 2: iterative centre-of-mass localization with the joint probability of Eq. 1 and Eq. 2."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk
import torch
from LandmarkCoreLib.device import fold_batch_norm
from LandmarkCoreLib.errors import LandmarkError
from LandmarkCoreLib.progress import CancelToken, ProgressCallback, no_progress

from .sampling import PatchGrid, resample, restack, slice_stacks

#: Maps a batch of slices (B, H, W) to per-pixel SOI probabilities of the same shape.
SlicePredictor = Callable[[np.ndarray], np.ndarray]


class SOINotFoundError(LandmarkError):
    """The joint probability map of a target is ~0: the structure of interest is not in the patch."""


@dataclass
class LocalizationResult:
    centre: np.ndarray
    probability: np.ndarray  # joint map (z, y, x) on ``grid`` (the last iteration's patch)
    grid: PatchGrid
    iterations: list[dict] = field(default_factory=list)  # centre, shift_mm, mass_mm3 per iteration
    converged: bool = True  # False: the shift never fell below the threshold (the centre kept drifting)
    start_probability: np.ndarray | None = None  # joint map of the first patch (around the start centre)
    start_grid: PatchGrid | None = None


def network_predictor(net: torch.nn.Module, device: torch.device, batch: int = 64) -> SlicePredictor:
    """Batched inference of (a copy of) the U-Net with its batch norms folded; channels_last measured
    1.3-2x faster on this CPU."""
    net = fold_batch_norm(copy.deepcopy(net).to(device).eval())
    channels_last = device.type == "cpu"
    if channels_last:
        net = net.to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def predict(slices: np.ndarray) -> np.ndarray:
        out = np.empty(slices.shape, np.float32)
        for start in range(0, len(slices), batch):
            x = torch.from_numpy(np.ascontiguousarray(slices[start : start + batch]))[:, None].to(device)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            out[start : start + batch] = torch.sigmoid(net(x))[:, 0].float().cpu().numpy()
        return out

    return predict


def joint_probability(predict: SlicePredictor, volume: np.ndarray) -> np.ndarray:
    """Eq. 1: product of the probability maps of the X, Y and Z slice stacks, voxel by voxel."""
    maps = restack([predict(stack) for stack in slice_stacks(volume)])
    return maps[0] * maps[1] * maps[2]


def barycentre(probability: np.ndarray, grid: PatchGrid) -> tuple[np.ndarray, float]:
    """Eq. 2: probability-weighted barycentre (mm) and the mass (mm^3)."""
    mass = float(probability.sum())
    if mass <= 0:
        return grid.centre.copy(), 0.0
    z, y, x = (np.arange(n) for n in probability.shape)
    index = (
        np.array(
            [
                (probability.sum(axis=(0, 1)) * x).sum(),
                (probability.sum(axis=(0, 2)) * y).sum(),
                (probability.sum(axis=(1, 2)) * z).sum(),
            ]
        )
        / mass
    )
    return grid.to_physical(index[None])[0], mass * grid.spacing**3


def concentration(probability: np.ndarray, soi_voxels: int) -> float:
    """How much of the mass sits on the ``soi_voxels`` most probable voxels, relative to a flat map (1).

    A blank or structureless image can give a diffuse joint probability with a sizeable total mass;
    a found SOI gives a concentrated one."""
    mass = float(probability.sum())
    k = int(np.clip(soi_voxels, 1, probability.size))
    if mass <= 0:
        return 0.0
    top = float(np.partition(probability.ravel(), probability.size - k)[-k:].sum())
    return (top / mass) / (k / probability.size)


def localize(
    predict: SlicePredictor,
    image: sitk.Image,
    start: np.ndarray,
    grid: PatchGrid,
    max_iterations: int,
    shift_threshold_mm: float,
    min_mass_mm3: float,
    soi_voxels: int = 0,
    min_concentration: float = 0.0,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> LocalizationResult:
    """Crop around the centre, segment the 3 slice stacks, move to the barycentre; repeat until it settles.

    ``grid`` gives the patch shape and axes (its centre is replaced); ``image`` is a prepared float image.
    Raises :class:`SOINotFoundError` when the joint probability mass (mm^3) is below ``min_mass_mm3`` or
    its :func:`concentration` on ``soi_voxels`` voxels is below ``min_concentration``.
    """
    centre = np.asarray(start, float)
    iterations: list[dict] = []
    converged = False
    for i in range(max_iterations):
        if cancel:
            cancel.check()
        patch_grid = PatchGrid(centre, grid.rotation, grid.spacing, grid.size)
        probability = joint_probability(predict, resample(image, patch_grid))
        if i == 0:
            start_probability, start_grid = probability, patch_grid
        new_centre, mass = barycentre(probability, patch_grid)
        shift = float(np.linalg.norm(new_centre - centre))
        concentrated = concentration(probability, soi_voxels) if soi_voxels else float("nan")
        iterations.append(
            {
                "centre": new_centre.tolist(),
                "shift_mm": shift,
                "mass_mm3": mass,
                "concentration": concentrated,
            }
        )
        progress((i + 1) / max_iterations, f"localization iteration {i + 1}: shift {shift:.2f} mm")
        if mass < min_mass_mm3:
            raise SOINotFoundError(
                f"structure of interest not found: joint probability mass {mass:.3g} mm^3 "
                f"< {min_mass_mm3:.3g} mm^3 (iteration {i + 1})"
            )
        if concentrated < min_concentration:
            raise SOINotFoundError(
                f"structure of interest not found: the joint probability is diffuse (concentration "
                f"{concentrated:.2f} < {min_concentration:.2f}; iteration {i + 1})"
            )
        centre = new_centre
        if shift < shift_threshold_mm:
            converged = True
            break
    return LocalizationResult(
        centre, probability, patch_grid, iterations, converged, start_probability, start_grid
    )
