"""Readers for the real data sets in ``../shared/data`` (conventions in that folder's README.md).

- mouse skull micro-CT: 20 subjects, 45 landmarks (.mrk.json, LPS), bone masks, a template;
- ISBI 2015 cephalograms: 19 landmarks by a senior and a junior annotator, 0.1 mm pixels;
- YouTube-Faces frames: 68 points in pixels with the person's identity;
- KNEEL annotations: 16 knee landmarks in a 466x466 px ROI at 0.3 mm/px.

Landmark sets are physical mm in the image's space: for 2D images (column, row) x spacing.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .errors import InputError
from .images import read_image
from .landmarks import LandmarkSet, read_landmarks

DATA_ROOT_ENV = "LANDMARK_DATA_ROOT"
_REPO_ROOT = Path(__file__).resolve().parents[2]


def default_data_root() -> Path:
    """``$LANDMARK_DATA_ROOT``, else ``../shared/data`` beside the repository or a folder above cwd."""
    env = os.environ.get(DATA_ROOT_ENV)
    if env:
        root = Path(env).expanduser()
        if not root.is_dir():
            raise InputError(f"data root ${DATA_ROOT_ENV}='{env}'", "is not a folder")
        return root
    bases = [_REPO_ROOT, Path.cwd(), *Path.cwd().parents]
    candidates = list(dict.fromkeys(base.parent / "shared" / "data" for base in bases))
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise InputError(
        "data root",
        f"not found; set ${DATA_ROOT_ENV} or put the data in ../shared/data beside the repository "
        f"(looked in {', '.join(str(c) for c in candidates[:3])}, ...)",
    )


def _root(root: str | os.PathLike | None) -> Path:
    return default_data_root() if root is None else Path(root)


def _require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise InputError(f"{what} '{path}'", "file does not exist")
    return path


def _read_csv_rows(path: Path, what: str) -> list[dict[str, str]]:
    with open(_require_file(path, what), newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _xy_columns(row: dict[str, str], labels: list[str], path: Path) -> np.ndarray:
    try:
        return np.array([[float(row[f"{k}_x"]), float(row[f"{k}_y"])] for k in labels])
    except (KeyError, ValueError) as exc:
        raise InputError(f"landmark table '{path}'", f"bad or missing column for {exc}") from None


# --------------------------------------------------------------------------- mouse skull micro-CT
MOUSE_DIR = "mouse_skull_microct"
#: Label values of the template's label map.
MOUSE_TEMPLATE_LABELS = {
    "skull": 1,
    "right hemimandible": 2,
    "left hemimandible": 21,
    "endocranial space": 15,
}


@dataclass(frozen=True)
class MouseSubject:
    """One mouse skull: micro-CT volume, its 45 landmarks and its bone mask."""

    name: str
    image: Path
    landmarks: Path
    bone_mask: Path

    def read_landmarks(self) -> LandmarkSet:
        return read_landmarks(self.landmarks, f"landmarks of mouse '{self.name}'")

    def read_image(self) -> sitk.Image:
        return read_image(self.image, f"micro-CT of mouse '{self.name}'", dimension=3)


@dataclass(frozen=True)
class MouseTemplate:
    """The population atlas: image, label map (see MOUSE_TEMPLATE_LABELS) and landmarks."""

    image: Path
    label_map: Path
    landmarks: Path


def mouse_skull_subjects(root: str | os.PathLike | None = None) -> list[MouseSubject]:
    """All subjects (sorted by strain name) that have an image, landmarks and a bone mask."""
    folder = _root(root) / MOUSE_DIR
    images = sorted((folder / "images").glob("*.nii.gz"))
    if not images:
        raise InputError(f"mouse skull data '{folder}'", "no images/*.nii.gz found")
    subjects = []
    for image in images:
        name = image.name[: -len(".nii.gz")]
        subjects.append(
            MouseSubject(
                name=name,
                image=image,
                landmarks=_require_file(folder / "landmarks" / f"{name}.mrk.json", "mouse landmarks"),
                bone_mask=_require_file(folder / "bone_masks" / f"{name}.nii.gz", "mouse bone mask"),
            )
        )
    return subjects


def mouse_skull_template(root: str | os.PathLike | None = None) -> MouseTemplate:
    folder = _root(root) / MOUSE_DIR / "template"
    return MouseTemplate(
        image=_require_file(folder / "low_res_template_UCHAR.nii.gz", "mouse template image"),
        label_map=_require_file(folder / "low_res_template_UCHAR-label.nii.gz", "mouse template label map"),
        landmarks=_require_file(folder / "45_LM-skull.mrk.json", "mouse template landmarks"),
    )


# --------------------------------------------------------------------------- ISBI 2015 cephalograms
ISBI_DIR = "isbi2015_ceph"
ISBI_SPACING_MM = 0.1
ISBI_LANDMARK_NAMES = [
    "sella",
    "nasion",
    "orbitale",
    "porion",
    "subspinale",
    "supramentale",
    "pogonion",
    "menton",
    "gnathion",
    "gonion",
    "lower incisal incision",
    "upper incisal incision",
    "upper lip",
    "lower lip",
    "subnasale",
    "soft tissue pogonion",
    "posterior nasal spine",
    "anterior nasal spine",
    "articulare",
]
_ISBI_COLUMNS = [str(i) for i in range(1, 20)]
ISBI_SPLITS = {"train": range(1, 151), "test1": range(151, 301), "all": range(1, 301)}
#: whose landmarks to use: the senior annotator's are the challenge's ground truth (Test1 included)
ISBI_ANNOTATORS = ("senior", "junior", "mean")


@dataclass(frozen=True)
class IsbiCase:
    """One cephalogram with both annotators' 19 landmarks (physical mm = pixel x 0.1)."""

    case_id: str
    image: Path
    senior: LandmarkSet
    junior: LandmarkSet

    def annotation(self, annotator: str = "senior") -> LandmarkSet:
        """The senior or junior annotator's landmarks, or their mean."""
        if annotator == "mean":
            return replace(self.senior, points=(self.senior.points + self.junior.points) / 2)
        if annotator not in ISBI_ANNOTATORS:
            raise InputError("ISBI annotator", f"'{annotator}' is not one of {', '.join(ISBI_ANNOTATORS)}")
        return getattr(self, annotator)

    def read_image(self) -> sitk.Image:
        """The radiograph as SimpleITK reads it, with its 0.1 mm spacing set (RGB JPEG pixels)."""
        image = read_image(self.image, f"cephalogram {self.case_id}", dimension=2)
        image.SetSpacing((ISBI_SPACING_MM, ISBI_SPACING_MM))
        return image


def _isbi_landmarks(points_mm: np.ndarray, name: str) -> LandmarkSet:
    return LandmarkSet(
        list(ISBI_LANDMARK_NAMES), points_mm, [f"ISBI landmark {k}" for k in _ISBI_COLUMNS], name
    )


def read_isbi_mm_table(path: str | os.PathLike) -> dict[str, LandmarkSet]:
    """``all_*_mm.csv``: case id ('001') -> 19 landmarks in mm."""
    path = Path(path)
    rows = _read_csv_rows(path, "ISBI landmark table")
    return {
        row["id"].zfill(3): _isbi_landmarks(_xy_columns(row, _ISBI_COLUMNS, path), row["id"].zfill(3))
        for row in rows
    }


def read_isbi_pixel_table(path: str | os.PathLike) -> dict[str, LandmarkSet]:
    """``train_senior.csv`` / ``test1_senior.csv`` (pixels): case id -> 19 landmarks in mm."""
    path = Path(path)
    table = {}
    for row in _read_csv_rows(path, "ISBI landmark table"):
        case_id = Path(row["image_path"]).stem
        table[case_id] = _isbi_landmarks(_xy_columns(row, _ISBI_COLUMNS, path) * ISBI_SPACING_MM, case_id)
    return table


def isbi_cases(split: str = "all", root: str | os.PathLike | None = None) -> list[IsbiCase]:
    """Cases of ``split`` ('train' 001-150, 'test1' 151-300, 'all') with both annotators."""
    if split not in ISBI_SPLITS:
        raise InputError("ISBI split", f"'{split}' is not one of {', '.join(ISBI_SPLITS)}")
    folder = _root(root) / ISBI_DIR
    senior = read_isbi_mm_table(folder / "all_senior_mm.csv")
    junior = read_isbi_mm_table(folder / "all_junior_mm.csv")
    cases = []
    for number in ISBI_SPLITS[split]:
        case_id = f"{number:03d}"
        if case_id not in senior or case_id not in junior:
            raise InputError(f"ISBI data '{folder}'", f"case {case_id} lacks senior or junior landmarks")
        cases.append(
            IsbiCase(case_id, folder / "images" / f"{case_id}.jpg", senior[case_id], junior[case_id])
        )
    return cases


# --------------------------------------------------------------------------- YouTube-Faces 68 points
FACES_DIR = "youtube_faces_68pt"
FACE_POINTS = 68
#: Outer eye corners in the iBUG/300-W layout (inter-ocular normalisation).
FACE_OUTER_EYE_CORNERS = (36, 45)
FACE_LABELS = [str(i) for i in range(FACE_POINTS)]


@dataclass(frozen=True)
class FaceSample:
    """One face frame: image path, identity and 68 (x, y) points in pixels."""

    image: Path
    identity: str
    points: np.ndarray

    def landmarks(self) -> LandmarkSet:
        """The 68 points as a landmark set (2D image: physical = pixels, as SimpleITK reads JPEG)."""
        return LandmarkSet(list(FACE_LABELS), self.points.copy(), name=self.image.stem)

    def inter_ocular_distance(self) -> float:
        return inter_ocular_distance(self.points)


def face_identity(file_name: str) -> str:
    """Person's name: the file name before its last ``_NN`` ('Al_Gore_03.jpg' -> 'Al_Gore')."""
    stem = Path(file_name).stem
    match = re.fullmatch(r"(.+)_\d+", stem)
    return match.group(1) if match else stem


def inter_ocular_distance(points: np.ndarray) -> float:
    """Distance between the outer eye corners (points 36 and 45) of a 68-point face."""
    a, b = FACE_OUTER_EYE_CORNERS
    return float(np.linalg.norm(np.asarray(points)[a] - np.asarray(points)[b]))


def youtube_faces_samples(split: str = "train", root: str | os.PathLike | None = None) -> list[FaceSample]:
    """Samples of ``split`` ('train' or 'test') in the order of the keypoint table."""
    if split not in ("train", "test"):
        raise InputError("YouTube-Faces split", f"'{split}' is not 'train' or 'test'")
    folder = _root(root) / FACES_DIR
    path = folder / f"{split}_keypoints.csv"
    return [
        FaceSample(
            folder / split / row["image"], face_identity(row["image"]), _xy_columns(row, FACE_LABELS, path)
        )
        for row in _read_csv_rows(path, "face keypoint table")
    ]


# --------------------------------------------------------------------------- KNEEL annotations
KNEEL_DIR = "kneel_annotations"
KNEEL_CSV = "bf_landmarks_1_0.3.csv"
KNEEL_SPACING_MM = 0.3
KNEEL_ROI_SIZE_MM = 140.0
KNEEL_ROI_SIZE_PX = 466  # int(140 / 0.3)
KNEEL_PAD_PX = 100
KNEEL_TIBIA_POINTS = 9
KNEEL_FEMUR_POINTS = 7
KNEEL_LABELS = [f"tibia {i}" for i in range(KNEEL_TIBIA_POINTS)] + [
    f"femur {i}" for i in range(KNEEL_FEMUR_POINTS)
]


@dataclass(frozen=True)
class KneeAnnotation:
    """One knee of the KNEEL table.

    ``points`` (16, 2): 9 tibia then 7 femur points, pixels of the 466x466 ROI (0.3 mm/px; left knees
    mirrored). ``bbox`` (x0, y0, x1, y1) and ``center`` (x, y) are pixels of the full image resampled
    to 0.3 mm/px and padded by 100 px on every side.
    """

    subject_id: str
    side: str
    kl: int
    points: np.ndarray
    bbox: np.ndarray
    center: np.ndarray

    def landmarks(self) -> LandmarkSet:
        """The 16 points in ROI mm (pixel x 0.3)."""
        return LandmarkSet(
            list(KNEEL_LABELS), self.points * KNEEL_SPACING_MM, name=f"{self.subject_id}_{self.side}"
        )

    def image_points(self, image_spacing_mm: float = KNEEL_SPACING_MM) -> np.ndarray:
        """The 16 points in pixels of the full, unpadded image with pixel size ``image_spacing_mm``."""
        return kneel_roi_to_image(self.points, self.bbox, self.side, image_spacing_mm)


def kneel_roi_to_image(
    points: np.ndarray, bbox: np.ndarray, side: str, image_spacing_mm: float = KNEEL_SPACING_MM
) -> np.ndarray:
    """Map ROI pixels to pixels of the full image: undo the left-knee mirror, the crop and the padding."""
    points = np.array(points, dtype=np.float64)
    if side == "L":
        points[:, 0] = KNEEL_ROI_SIZE_PX - points[:, 0]
    padded = points + np.asarray(bbox[:2], dtype=np.float64)
    return (padded - KNEEL_PAD_PX) * (KNEEL_SPACING_MM / image_spacing_mm)


def kneel_image_to_roi(
    points: np.ndarray, bbox: np.ndarray, side: str, image_spacing_mm: float = KNEEL_SPACING_MM
) -> np.ndarray:
    """Inverse of :func:`kneel_roi_to_image`."""
    padded = np.asarray(points, dtype=np.float64) * (image_spacing_mm / KNEEL_SPACING_MM) + KNEEL_PAD_PX
    roi = padded - np.asarray(bbox[:2], dtype=np.float64)
    if side == "L":
        roi[:, 0] = KNEEL_ROI_SIZE_PX - roi[:, 0]
    return roi


def kneel_bbox_around(center: np.ndarray) -> np.ndarray:
    """The ROI box (x0, y0, x1, y1) in padded 0.3 mm pixels around ``center``, as KNEEL crops it."""
    half = KNEEL_ROI_SIZE_PX // 2
    cx, cy = (int(v) for v in center)
    return np.array([cx - half, cy - half, cx + half, cy + half])


def _ints(text: str, count: int, what: str) -> np.ndarray:
    values = np.array([int(v) for v in text.split(",")])
    if values.size != count:
        raise ValueError(f"{what} has {values.size} numbers, expected {count}")
    return values


def read_kneel_csv(path: str | os.PathLike | None = None) -> list[KneeAnnotation]:
    """All knees of a KNEEL ``bf_landmarks`` CSV (default: the one in the data root)."""
    path = _root(None) / KNEEL_DIR / KNEEL_CSV if path is None else Path(path)
    annotations = []
    for line, row in enumerate(_read_csv_rows(path, "KNEEL landmark table"), start=2):
        try:
            tibia = _ints(row["tibia"], 2 * KNEEL_TIBIA_POINTS, "tibia").reshape(-1, 2)
            femur = _ints(row["femur"], 2 * KNEEL_FEMUR_POINTS, "femur").reshape(-1, 2)
            annotation = KneeAnnotation(
                subject_id=row["subject_id"],
                side=row["side"],
                kl=int(row["kl"]),
                points=np.vstack([tibia, femur]).astype(np.float64),
                bbox=_ints(row["bbox"], 4, "bbox"),
                center=_ints(row["center"], 2, "center"),
            )
        except (KeyError, ValueError, AttributeError) as exc:
            raise InputError(f"KNEEL landmark table '{path}'", f"line {line}: {exc}") from None
        if annotation.side not in ("L", "R"):
            raise InputError(
                f"KNEEL landmark table '{path}'", f"line {line}: side '{annotation.side}' is not L or R"
            )
        annotations.append(annotation)
    return annotations
