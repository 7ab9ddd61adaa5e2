"""Checks that a detection's answer is plausible, made from the image content (never the header):

- scale: the singular values of an affine registration of the posed target onto the reference's working
  patch (a slice thickness read 3x wrong stretches one direction 3x; the joint probability map does not
  show it, as the network segments a stretched structure only in part);
- handedness: a target whose anatomy is mirrored in world space (a header flipped by mistake) matches the
  reference better through a reflection than through any rotation; for a near-symmetric structure a
  rotation still matches well, which would swap left and right labels silently: when neither reading fits
  clearly better the result carries a warning. The reflection tried is the reference's own symmetry
  plane, found at training among the principal planes of its SOI.

A left-handed voxel grid (direction determinant -1) changes neither: both checks work in physical space.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from LandmarkCoreLib.errors import InputError

from .orientation import normalised_cross_correlation, principal_axes, second_moments
from .sampling import PatchGrid, pose_transform, resample


def require_plausible_scale(scales: np.ndarray, limit: float) -> None:
    """``scales``: target size / reference size along the principal directions of their affine map."""
    if np.max(scales) > limit or np.min(scales) < 1 / limit:
        shown = ", ".join(f"{s:.2f}" for s in scales)
        raise InputError(
            "target image",
            f"the structure is {shown} times the reference's size along its principal directions (allowed "
            f"{1 / limit:.2f}-{limit:.2f}, max_scale_ratio): check the voxel spacing (slice thickness) in "
            "the image header",
        )


def symmetry_mirror(patch: np.ndarray, soi_patch: np.ndarray, grid: PatchGrid) -> np.ndarray:
    """Reflection (3x3, physical, about the grid centre) across the principal plane of the SOI under
    which the patch looks most like itself."""
    image = sitk.GetImageFromArray(patch.astype(np.float32))
    image.CopyInformation(grid.image())
    _, covariance = second_moments(soi_patch.astype(float), grid.voxel_coordinates())
    best, best_score = np.eye(3), -np.inf
    for normal in principal_axes(covariance)[1].T:
        mirror = np.eye(3) - 2 * np.outer(normal, normal)
        moved = resample(image, grid, pose_transform(mirror, grid.centre, grid.centre))
        score = normalised_cross_correlation(moved, patch)
        if score > best_score:
            best, best_score = mirror, score
    return best


#: a reading of the handedness is confirmed when it fits better than the other by this much: near-symmetric
#: mouse skulls correctly read gave up to 0.022 more through the reflection (6 of 18 targets refused without
#: a margin), a mirrored header on the human template 0.109 more
HANDEDNESS_MARGIN = 0.05


def handedness_warnings(as_read: float, mirrored: float) -> list[str]:
    """Correlations (higher = better) of the target's registration as read and through the reflection.

    Raises InputError when the reflection fits clearly better (a mirrored header); returns a warning when
    neither fits clearly better (near-symmetric anatomy: the image content cannot tell), else none."""
    if mirrored > as_read + HANDEDNESS_MARGIN:
        raise InputError(
            "target image",
            f"its anatomy is mirrored left-right relative to the reference (registration correlation "
            f"{mirrored:.3f} through a reflection vs {as_read:.3f} as read): the image header's orientation "
            "is probably wrong; left and right landmarks would be swapped",
        )
    if mirrored > as_read - HANDEDNESS_MARGIN:
        return [
            f"handedness could not be confirmed from the image content (near-symmetric anatomy: "
            f"registration correlation {as_read:.3f} as read vs {mirrored:.3f} through a reflection): check "
            "the header's orientation; if it is mirrored, left and right landmarks are swapped"
        ]
    return []
