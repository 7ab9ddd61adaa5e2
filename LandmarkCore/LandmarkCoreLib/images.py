"""Image I/O and geometry through SimpleITK (physical space = LPS, mm).

3D volumes (NRRD, NIfTI, MHA, a DICOM series folder) and 2D images (PNG, JPEG, TIFF, a single DICOM
file). SimpleITK reads a 2D image with origin 0 and spacing 1 unless the file says otherwise, so for
photographs "physical" means (column, row) in pixels.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .atomic import atomic_path
from .errors import InputError

_FLOAT_PIXEL_IDS = {
    sitk.sitkFloat32,
    sitk.sitkFloat64,
    sitk.sitkVectorFloat32,
    sitk.sitkVectorFloat64,
}


def read_image(path: str | os.PathLike, what: str = "image", dimension: int | None = None) -> sitk.Image:
    """Read an image file or a DICOM series folder; InputError names the file and the fault.

    ``dimension=3`` refuses 2D images and single-slice volumes; ``dimension=2`` turns a single-slice
    volume (e.g. a one-file DICOM radiograph) into a 2D image with the same in-plane geometry.
    """
    path = Path(path)
    label = f"{what} '{path}'"
    if not path.exists():
        raise InputError(label, "file does not exist")
    image = _read_dicom_series(path, label) if path.is_dir() else _read_file(path, label)
    image = conform_dimension(image, dimension, label)
    _check_finite(image, label)
    return image


def _read_file(path: Path, label: str) -> sitk.Image:
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unknown reason"
        raise InputError(label, f"not a readable image ({reason})") from None


def _read_dicom_series(folder: Path, label: str) -> sitk.Image:
    series_ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    if not series_ids:
        raise InputError(label, "folder holds no DICOM series")
    if len(series_ids) > 1:
        raise InputError(label, f"folder holds {len(series_ids)} DICOM series; give a folder with one")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_ids[0]))
    try:
        return reader.Execute()
    except RuntimeError as exc:
        raise InputError(label, f"DICOM series cannot be read ({str(exc).strip()[-200:]})") from None


def conform_dimension(image: sitk.Image, dimension: int | None, label: str) -> sitk.Image:
    """``image`` as a ``dimension``-D image (single-slice volume -> 2D) or InputError naming ``label``."""
    if dimension is None:
        return image
    if dimension not in (2, 3):
        raise InputError(label, f"dimension must be 2 or 3, not {dimension}")
    size = image.GetSize()
    if dimension == 3:
        if image.GetDimension() != 3 or min(size) < 2:
            raise InputError(label, f"is a 2D image (size {size}), but a 3D volume is needed")
        return image
    if image.GetDimension() == 2:
        return image
    if image.GetDimension() == 3 and size[2] == 1:
        return image[:, :, 0]
    raise InputError(label, f"is a 3D volume (size {size}), but a 2D image is needed")


def _check_finite(image: sitk.Image, label: str) -> None:
    if image.GetPixelID() in _FLOAT_PIXEL_IDS and not np.isfinite(sitk.GetArrayViewFromImage(image)).all():
        raise InputError(label, "contains NaN or infinite voxel values")


def write_image(path: str | os.PathLike, image: sitk.Image, compress: bool = True) -> None:
    """Write ``image`` atomically; the format follows the extension."""
    with atomic_path(path) as tmp:
        try:
            sitk.WriteImage(image, str(tmp), compress)
        except RuntimeError as exc:
            raise InputError(
                f"image output file '{path}'", f"cannot be written ({str(exc).strip()[-200:]})"
            ) from None


def to_scalar(image: sitk.Image) -> sitk.Image:
    """A one-component float32 image: vector (e.g. RGB) pixels are averaged, geometry kept."""
    if image.GetNumberOfComponentsPerPixel() == 1:
        return sitk.Cast(image, sitk.sitkFloat32)
    array = sitk.GetArrayFromImage(image).astype(np.float32).mean(axis=-1)
    scalar = sitk.GetImageFromArray(array)
    scalar.CopyInformation(image)
    return scalar


def _index_to_physical_matrix(image: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """Matrix ``A`` and origin ``o`` with physical = A @ index + o."""
    dim = image.GetDimension()
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(dim, dim)
    return direction @ np.diag(image.GetSpacing()), np.asarray(image.GetOrigin(), dtype=np.float64)


def _as_points(image: sitk.Image, values: np.ndarray, what: str) -> np.ndarray:
    points = np.asarray(values, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != image.GetDimension():
        raise InputError(
            what, f"expected an (N, {image.GetDimension()}) array for this image, got {points.shape}"
        )
    return points


def physical_to_index(image: sitk.Image, points: np.ndarray) -> np.ndarray:
    """Continuous voxel indices (x, y[, z] order, like SimpleITK) of physical LPS ``points``."""
    points = _as_points(image, points, "physical points")
    matrix, origin = _index_to_physical_matrix(image)
    return np.linalg.solve(matrix, (points - origin).T).T


def index_to_physical(image: sitk.Image, indices: np.ndarray) -> np.ndarray:
    """Physical LPS positions of continuous voxel ``indices`` (x, y[, z] order)."""
    indices = _as_points(image, indices, "voxel indices")
    matrix, origin = _index_to_physical_matrix(image)
    return indices @ matrix.T + origin


def points_inside(image: sitk.Image, points: np.ndarray) -> np.ndarray:
    """Boolean (N,): whether each physical point lies inside the image's voxel grid (±0.5 voxel)."""
    index = physical_to_index(image, points)
    size = np.asarray(image.GetSize(), dtype=np.float64)
    return np.all((index >= -0.5) & (index <= size - 0.5), axis=1)
