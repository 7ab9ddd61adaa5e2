"""Images as arrays at a stage's pixel size, and crops of them through a pixel->pixel homography.

Everything downstream works in the *continuous index space of a resampled array* (column, row):
:class:`ScaledImage` remembers how that space maps back to the original image's index space, and the
original image (SimpleITK) maps index to physical space. Resampled arrays of training images are
cached in a folder outside the repository (``$KNEE_LANDMARKS_CACHE`` or /tmp) so that the JPEGs are
decoded once.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
import torch.nn.functional as F  # noqa: N812
from LandmarkCoreLib.datasets import KNEEL_LABELS
from LandmarkCoreLib.images import IMAGE_SUFFIXES_2D as IMAGE_SUFFIXES
from LandmarkCoreLib.images import physical_to_index, read_image
from LandmarkCoreLib.landmarks import LandmarkSet
from PIL import Image


@dataclass
class ScaledImage:
    """A 2D float32 array resampled to ``spacing_mm``; array index j <-> original index j*factor + shift."""

    array: np.ndarray  # (rows, columns)
    factor: np.ndarray  # (2,) original pixels per array pixel, (x, y)
    shift: np.ndarray  # (2,)

    def from_original(self, index: np.ndarray) -> np.ndarray:
        return (np.asarray(index, dtype=np.float64) - self.shift) / self.factor

    def to_original(self, index: np.ndarray) -> np.ndarray:
        return np.asarray(index, dtype=np.float64) * self.factor + self.shift

    def rescaled(self, spacing_mm: float, own_spacing_mm: float) -> ScaledImage:
        """This array scaled further to ``spacing_mm``, still mapped to the original image."""
        inner = scale_array(self.array, (own_spacing_mm, own_spacing_mm), spacing_mm)
        return ScaledImage(inner.array, inner.factor * self.factor, inner.shift * self.factor + self.shift)


def scale_array(array: np.ndarray, spacing: tuple[float, float], spacing_mm: float) -> ScaledImage:
    """Area-average (box filter) ``array`` (rows, cols) with pixel ``spacing`` (x, y) to ``spacing_mm``."""
    return scale_array_to(array, spacing, [spacing_mm])[0]


def scale_array_to(
    array: np.ndarray, spacing: tuple[float, float], spacings_mm: list[float]
) -> list[ScaledImage]:
    """``scale_array`` to several pixel sizes; the full-size array is handed to PIL once (a copy that
    costs as much as a resize on a 20-megabyte radiograph)."""
    rows, cols = array.shape
    source = Image.fromarray(np.asarray(array, dtype=np.float32), mode="F")
    scaled = []
    for spacing_mm in spacings_mm:
        new_cols = max(1, int(round(cols * spacing[0] / spacing_mm)))
        new_rows = max(1, int(round(rows * spacing[1] / spacing_mm)))
        resized = source.resize((new_cols, new_rows), Image.BOX)
        factor = np.array([cols / new_cols, rows / new_rows])
        # pixel j covers original pixels [j*f - 0.5, (j+1)*f - 0.5): its centre is (j + 0.5)*f - 0.5;
        # a writeable copy, so that sample_crops shares it with torch instead of copying it per crop
        scaled.append(ScaledImage(np.array(resized, dtype=np.float32), factor, 0.5 * factor - 0.5))
    return scaled


def image_array(image: sitk.Image) -> np.ndarray:
    """(rows, cols) float32 of a 2D SimpleITK image. Colour pixels become grey: 8-bit RGB through PIL's
    luma conversion (fast; equal to the channel mean for the grey-in-RGB files radiographs come as),
    other vector pixels as the mean of their components."""
    if image.GetNumberOfComponentsPerPixel() == 1:
        return sitk.GetArrayFromImage(image).astype(np.float32)
    view = sitk.GetArrayViewFromImage(image)
    if view.dtype == np.uint8 and view.shape[-1] == 3:
        return np.asarray(Image.fromarray(np.ascontiguousarray(view)).convert("L"), dtype=np.float32)
    return view.mean(axis=-1, dtype=np.float32)


def scale_image(image: sitk.Image, spacing_mm: float) -> ScaledImage:
    return scale_array(image_array(image), image.GetSpacing(), spacing_mm)


def cache_dir() -> Path:
    return Path(os.environ.get("KNEE_LANDMARKS_CACHE", "/tmp/knee_landmarks_cache"))


def cached_scaled(
    path: str | os.PathLike, spacing: tuple[float, float] | None, spacing_mm: float
) -> ScaledImage:
    """:func:`scale_image` of the file at ``path`` (optionally with its spacing overridden), cached."""
    path = Path(path)
    stat = path.stat()
    key = hashlib.sha1(f"{path.resolve()}|{stat.st_mtime_ns}|{stat.st_size}|{spacing}|{spacing_mm}".encode())
    target = cache_dir() / f"{key.hexdigest()}.npz"
    if target.exists():
        with np.load(target) as stored:
            return ScaledImage(stored["array"], stored["factor"], stored["shift"])
    image = read_image(path, "training image", dimension=2)
    if spacing is not None:
        image.SetSpacing(spacing)
    scaled = scale_image(image, spacing_mm)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, array=scaled.array, factor=scaled.factor, shift=scaled.shift)
    os.replace(tmp, target)
    return scaled


@dataclass
class TrainingCase:
    """An image file and its landmarks in that image's physical space."""

    image_path: Path
    landmarks: LandmarkSet
    spacing: tuple[float, float] | None = None  # override of the file's pixel size
    mirror: bool = False  # flip left-right before use (KNEEL's left knees)


def case_points_index(case: TrainingCase, image: sitk.Image) -> np.ndarray:
    """The case's landmarks as continuous original-image indices (N, 2)."""
    return physical_to_index(image, case.landmarks.as_2d().points)


def crop_transform(
    centre: np.ndarray,
    out_size: tuple[int, int],
    zoom: float = 1.0,
    angle: float = 0.0,
    perspective: tuple[float, float] = (0.0, 0.0),
    mirror: bool = False,
) -> np.ndarray:
    """3x3 homography: output pixel (column, row, 1) -> array index, for an ``out_size`` crop centred
    on ``centre`` (array index) at the array's pixel size times ``zoom``, rotated by ``angle``
    radians, with a small ``perspective`` term and an optional left-right mirror."""
    w, h = out_size
    to_centre = np.array([[1.0, 0, -(w - 1) / 2], [0, 1.0, -(h - 1) / 2], [0, 0, 1]])
    proj = np.array([[1.0, 0, 0], [0, 1.0, 0], [perspective[0] / w, perspective[1] / h, 1.0]])
    c, s = np.cos(angle) * zoom, np.sin(angle) * zoom
    flip = -1.0 if mirror else 1.0
    rot = np.array([[c * flip, -s, centre[0]], [s * flip, c, centre[1]], [0, 0, 1]])
    return rot @ proj @ to_centre


def apply_homography(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    homogeneous = np.c_[points, np.ones(len(points))] @ matrix.T
    return homogeneous[:, :2] / homogeneous[:, 2:3]


def sample_crops(
    arrays: list[np.ndarray], matrices: list[np.ndarray], out_size: tuple[int, int]
) -> torch.Tensor:
    """Bilinear crops (B, 1, h, w) of ``arrays`` through output->array homographies (zeros outside)."""
    w, h = out_size
    cols, rows = torch.meshgrid(
        torch.arange(w, dtype=torch.float64), torch.arange(h, dtype=torch.float64), indexing="xy"
    )
    grid_out = torch.stack([cols.reshape(-1), rows.reshape(-1), torch.ones(w * h, dtype=torch.float64)], 1)
    crops = []
    for array, matrix in zip(arrays, matrices, strict=True):
        src = grid_out @ torch.from_numpy(matrix).T
        src = src[:, :2] / src[:, 2:3]
        size = torch.tensor([array.shape[1], array.shape[0]], dtype=torch.float64)
        norm = (2 * src + 1) / size - 1  # align_corners=False convention
        grid = norm.reshape(1, h, w, 2).float()
        tensor = torch.from_numpy(np.require(array, np.float32, ["C", "W"]))[None, None]
        crops.append(F.grid_sample(tensor, grid, mode="bilinear", padding_mode="zeros", align_corners=False))
    return torch.cat(crops, 0)


def normalise(crops: torch.Tensor) -> torch.Tensor:
    """Per-crop zero mean, unit variance (radiographs differ in exposure and bit depth)."""
    mean = crops.mean(dim=(1, 2, 3), keepdim=True)
    std = crops.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
    return (crops - mean) / std


def image_and_points(case: TrainingCase, spacing_mm: float) -> tuple[ScaledImage, np.ndarray]:
    """The cached scaled array of ``case`` and its landmarks in that array's index space."""
    geometry = image_geometry(case.image_path)
    if case.spacing is not None:
        geometry.SetSpacing(case.spacing)
    scaled = cached_scaled(case.image_path, case.spacing, spacing_mm)
    return scaled, scaled.from_original(case_points_index(case, geometry))


def image_geometry(path: Path) -> sitk.Image:
    """A 1x1 image carrying the file's spacing/origin/direction (enough for index <-> physical)."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    image = sitk.Image([1] * reader.GetDimension(), sitk.sitkUInt8)
    image.SetSpacing(reader.GetSpacing())
    image.SetOrigin(reader.GetOrigin())
    image.SetDirection(reader.GetDirection())
    return image


LANDMARK_SUFFIXES = (".mrk.json", ".fcsv", ".csv", ".json")


def resolve_training_cases(spec: str, spacing_mm: float | None = None) -> list[TrainingCase]:
    """Training cases from ``'isbi:<split>[:<annotator>]'`` (the ISBI 2015 data; senior annotator unless
    ``junior`` or ``mean`` is given),
    ``'kneel:CSV:IMAGES_DIR'`` (KNEEL's annotation table, images named by subject id) or
    ``'IMAGES_DIR:LANDMARKS_DIR'`` (landmark files named like the images, any shared reader format)."""
    from LandmarkCoreLib.datasets import ISBI_SPACING_MM, isbi_cases
    from LandmarkCoreLib.errors import InputError
    from LandmarkCoreLib.landmarks import read_landmarks

    spacing = None if spacing_mm is None else (spacing_mm, spacing_mm)
    if spec.startswith("kneel:"):
        csv_path, _, images_dir = spec[len("kneel:") :].rpartition(":")
        return kneel_cases(Path(csv_path), Path(images_dir), spacing)
    if spec.startswith("isbi:"):
        spacing = spacing or (ISBI_SPACING_MM, ISBI_SPACING_MM)
        split, _, annotator = spec[len("isbi:") :].partition(":")
        return [
            TrainingCase(c.image, c.annotation(annotator or "senior"), spacing) for c in isbi_cases(split)
        ]
    if spec.count(":") != 1:
        raise InputError(
            "training data", f"'{spec}' is neither 'isbi:<split>[:<annotator>]' nor IMAGES_DIR:LANDMARKS_DIR"
        )
    images_dir, landmarks_dir = (Path(p) for p in spec.split(":"))
    landmark_files = {}
    for path in sorted(landmarks_dir.iterdir()) if landmarks_dir.is_dir() else []:
        for suffix in LANDMARK_SUFFIXES:
            if path.name.lower().endswith(suffix):
                landmark_files[path.name[: -len(suffix)]] = path
    cases = []
    for image_path in sorted(images_dir.iterdir()) if images_dir.is_dir() else []:
        stem = next(
            (image_path.name[: -len(s)] for s in IMAGE_SUFFIXES if image_path.name.lower().endswith(s)), None
        )
        if stem is not None and stem in landmark_files:
            cases.append(TrainingCase(image_path, read_landmarks(landmark_files[stem]), spacing))
    if not cases:
        raise InputError(
            "training data", f"no image in '{images_dir}' has a landmark file in '{landmarks_dir}'"
        )
    return cases


def kneel_cases(csv_path: Path, images_dir: Path, spacing: tuple[float, float] | None) -> list[TrainingCase]:
    """One case per knee of a KNEEL table (shared reader): ROI pixels mapped back to the full image
    ``IMAGES_DIR/<subject_id>.*`` (its own pixel size or ``spacing``), left knees flagged for mirroring.

    Each image should show one knee: stage 1 looks at the whole image (KNEEL's split of a bilateral
    film into halves is not done here)."""
    from LandmarkCoreLib.datasets import read_kneel_csv
    from LandmarkCoreLib.errors import InputError
    from LandmarkCoreLib.images import index_to_physical

    cases = []
    for knee in read_kneel_csv(csv_path):
        image_path = next((p for p in sorted(images_dir.glob(f"{knee.subject_id}.*"))), None)
        if image_path is None:
            raise InputError(f"KNEEL images '{images_dir}'", f"no image file for subject {knee.subject_id}")
        geometry = image_geometry(image_path)
        if spacing is not None:
            geometry.SetSpacing(spacing)
        points = index_to_physical(geometry, knee.image_points(geometry.GetSpacing()[0]))
        landmarks = LandmarkSet(list(KNEEL_LABELS), points, name=f"{knee.subject_id}_{knee.side}")
        cases.append(TrainingCase(image_path, landmarks, spacing, mirror=knee.side == "L"))
    return cases
