"""Image I/O and geometry through SimpleITK (physical space = LPS, mm).

3D volumes (NRRD, NIfTI, MHA, a DICOM series folder) and 2D images (PNG, JPEG, TIFF, a single DICOM
file). SimpleITK reads a 2D image with origin 0 and spacing 1 unless the file says otherwise, so for
photographs "physical" means (column, row) in pixels.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .atomic import atomic_path
from .errors import InputError

#: The file types each kind of module reads (a DICOM series is a folder); one list for the whole tree.
IMAGE_SUFFIXES_3D = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
IMAGE_SUFFIXES_2D = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".tif",
    ".tiff",
    ".dcm",
    ".nrrd",
    ".nii",
    ".nii.gz",
    ".mha",
)
_ALL_SUFFIXES = tuple(sorted(set(IMAGE_SUFFIXES_3D + IMAGE_SUFFIXES_2D), key=len, reverse=True))
_NIFTI_FLOAT_TYPES = {16: "f4", 64: "f8"}  # NIfTI-1 datatype codes of float32 / float64

_FLOAT_PIXEL_IDS = {
    sitk.sitkFloat32,
    sitk.sitkFloat64,
    sitk.sitkVectorFloat32,
    sitk.sitkVectorFloat64,
}


def image_stem(path: str | os.PathLike) -> str:
    """The file name without its image suffix (``pat.visit1.jpg`` -> ``pat.visit1``); a folder: its name."""
    name = Path(path).name
    for suffix in _ALL_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


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
    check_file_complete(path, label)
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unknown reason"
        raise InputError(label, f"not a readable image ({reason})") from None


def check_file_complete(path: Path, label: str) -> None:
    """Refuse files that end early or hide NaN, which SimpleITK would read without an error.

    A truncated ``.gz`` stream, a NIfTI file shorter than its header says, a JPEG cut before its last
    scan ends, a PNG without its end chunk; NaN/inf in a float NIfTI (ITK's reader turns them into 0).
    """
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        _check_nifti(_file_bytes(path, label), label)
    elif name.endswith(".gz"):
        _file_bytes(path, label)
    elif name.endswith((".jpg", ".jpeg", ".png")):
        _check_photo(path.read_bytes(), label)


def _file_bytes(path: Path, label: str) -> bytes:
    """The file's bytes, decompressed for ``.gz``; InputError if the compressed stream ends early."""
    if not path.name.lower().endswith(".gz"):
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as stream:
            return stream.read()
    except (EOFError, OSError, zlib.error) as exc:
        raise InputError(label, f"compressed file is truncated or corrupt ({exc})") from None


def _check_nifti(data: bytes, label: str) -> None:
    header = _nifti_header(data)
    if header is None:
        return  # not NIfTI-1 (e.g. NIfTI-2): left to ITK
    endian, shape, datatype, bitpix, offset = header
    needed = offset + int(np.prod(shape, dtype=np.int64)) * bitpix // 8
    if len(data) < needed:
        raise InputError(
            label, f"file is truncated ({len(data)} bytes of voxel data, the header needs {needed})"
        )
    if datatype in _NIFTI_FLOAT_TYPES:
        values = np.frombuffer(
            data, endian + _NIFTI_FLOAT_TYPES[datatype], count=int(np.prod(shape)), offset=offset
        )
        bad = int(np.count_nonzero(~np.isfinite(values)))
        if bad:
            raise InputError(label, f"contains {bad} NaN or infinite voxel values")


def _nifti_header(data: bytes) -> tuple[str, list[int], int, int, int] | None:
    if len(data) < 352:
        return None
    for endian in ("<", ">"):
        if int(np.frombuffer(data, endian + "i4", 1, 0)[0]) == 348:
            dims = np.frombuffer(data, endian + "i2", 8, 40)
            ndim = int(dims[0])
            if not 1 <= ndim <= 7:
                return None
            datatype, bitpix = (int(v) for v in np.frombuffer(data, endian + "i2", 2, 70))
            offset = int(np.frombuffer(data, endian + "f4", 1, 108)[0])
            return endian, [max(int(d), 1) for d in dims[1 : ndim + 1]], datatype, bitpix, max(offset, 352)
    return None


def _check_photo(data: bytes, label: str) -> None:
    """A JPEG's last scan (SOS marker) must be followed by its end marker (a thumbnail's comes earlier);
    a PNG must end with its IEND chunk. Files that are neither are left to SimpleITK's error."""
    if data.startswith(b"\xff\xd8") and data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda"):
        raise InputError(label, "JPEG file is truncated (the image data ends early)")
    if data.startswith(b"\x89PNG") and b"IEND" not in data[-64:]:
        raise InputError(label, "PNG file is truncated (no end chunk)")


def _read_dicom_series(folder: Path, label: str) -> sitk.Image:
    series_ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    if not series_ids:
        raise InputError(label, "folder holds no DICOM series")
    if len(series_ids) > 1:
        raise InputError(label, f"folder holds {len(series_ids)} DICOM series; give a folder with one")
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_ids[0])
    _check_slice_spacing(files, label)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    try:
        return reader.Execute()
    except RuntimeError as exc:
        raise InputError(label, f"DICOM series cannot be read ({str(exc).strip()[-200:]})") from None


def _check_slice_spacing(files: tuple[str, ...], label: str) -> None:
    """Refuse a series whose slice positions have a gap (missing files) or repeat; spacing varies < 10 %."""
    positions = []
    for name in files:
        reader = sitk.ImageFileReader()
        reader.SetFileName(name)
        try:
            reader.ReadImageInformation()
            position = [float(v) for v in reader.GetMetaData("0020|0032").split("\\")]
            row_col = [float(v) for v in reader.GetMetaData("0020|0037").split("\\")]
        except RuntimeError:
            return  # no positions to check: ITK orders the files as it can
        positions.append(np.dot(np.cross(row_col[:3], row_col[3:]), position))
    if len(positions) < 3:
        return
    steps = np.diff(np.sort(positions))
    typical = float(np.median(steps))
    if typical <= 0 or steps.min() < 0.5 * typical or steps.max() > 1.5 * typical:
        raise InputError(
            label,
            f"DICOM series has uneven slice positions (steps {steps.min():.3g}-{steps.max():.3g} mm, "
            f"typical {typical:.3g} mm): slices are missing or repeated",
        )


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
