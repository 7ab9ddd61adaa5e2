"""A structure of interest from the image alone: threshold (Otsu's when none is given), the largest
connected component. For micro-CT of bone a fixed threshold gives the skull (the mouse data's bone-mask
recipe); for a head MRI Otsu's threshold gives the head, with its enclosed dark parts (CSF) filled."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from LandmarkCoreLib.errors import InputError


def threshold_soi(image: sitk.Image, threshold: float | None = None, what: str = "image") -> sitk.Image:
    """UInt8 mask (same grid as ``image``) of the largest connected part at or above ``threshold``."""
    if threshold is not None and not np.isfinite(threshold):
        raise InputError(f"SOI threshold for {what}", f"must be finite, got {threshold}")
    image = sitk.Cast(image, sitk.sitkFloat32)
    if threshold is None:
        foreground = sitk.OtsuThreshold(image, 0, 1)
    else:
        foreground = sitk.Cast(image >= float(threshold), sitk.sitkUInt8)
    components = sitk.ConnectedComponent(foreground)
    largest = sitk.Cast(sitk.RelabelComponent(components, sortByObjectSize=True) == 1, sitk.sitkUInt8)
    if not sitk.GetArrayViewFromImage(largest).any():
        level = "Otsu's threshold" if threshold is None else f"threshold {threshold:g}"
        raise InputError(what, f"no voxel at or above {level}: no structure of interest")
    if threshold is None:
        largest = sitk.BinaryFillhole(largest, fullyConnected=False, foregroundValue=1)
    return largest
