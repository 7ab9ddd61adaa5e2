"""Quality-control picture: three orthogonal maximum-intensity views of the target patch (in the
reference frame, after localization and rotation) with the detected landmarks on them."""

from __future__ import annotations

import os

import numpy as np
import SimpleITK as sitk
from LandmarkCoreLib.atomic import atomic_path


def write_qc_png(path: str | os.PathLike, patch: sitk.Image, points: np.ndarray, title: str = "") -> None:
    """``points`` are physical points of ``patch``'s space (N, 3). Written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    volume = sitk.GetArrayFromImage(patch)  # z, y, x
    index = np.array([patch.TransformPhysicalPointToContinuousIndex([float(v) for v in p]) for p in points])
    views = [
        ("axial (z)", volume.max(axis=0), index[:, 0], index[:, 1]),
        ("coronal (y)", volume.max(axis=1), index[:, 0], index[:, 2]),
        ("sagittal (x)", volume.max(axis=2), index[:, 1], index[:, 2]),
    ]
    figure, axes = plt.subplots(1, 3, figsize=(12, 4.4))
    for axis, (name, image, u, v) in zip(axes, views, strict=True):
        axis.imshow(image, cmap="gray", origin="lower")
        axis.scatter(u, v, s=12, c="red", marker="+", linewidths=1)
        axis.set_title(name)
        axis.axis("off")
    figure.suptitle(title)
    figure.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        figure.savefig(tmp, dpi=80)
    plt.close(figure)
