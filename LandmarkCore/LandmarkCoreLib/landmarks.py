"""Landmark sets and their files: Slicer ``.mrk.json``, legacy ``.fcsv`` and plain CSV.

In memory a :class:`LandmarkSet` holds physical positions in mm in LPS, the space SimpleITK uses.
Readers honour the coordinate system a file declares (LPS or RAS); writers always write LPS.
A point whose position is unknown (``positionStatus`` missing/undefined) is NaN.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import write_text_atomic
from .errors import InputError

MARKUPS_SCHEMA = (
    "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/Resources/"
    "Schema/markups-schema-v1.0.3.json#"
)
#: Multiplying LPS by this gives RAS and vice versa.
LPS_RAS_FLIP = np.array([-1.0, -1.0, 1.0])
FCSV_COLUMNS = "id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID"
_MISSING_STATUSES = ("missing", "undefined")


@dataclass
class LandmarkSet:
    """Ordered, labelled landmark positions (physical mm, LPS; 2D or 3D)."""

    labels: list[str]
    points: np.ndarray
    descriptions: list[str] | None = None
    name: str = ""

    def __post_init__(self) -> None:
        self.labels = [str(label) for label in self.labels]
        self.points = np.asarray(self.points, dtype=np.float64)
        if self.points.ndim != 2 or self.points.shape[1] not in (2, 3):
            raise InputError(
                self._what(), f"points must be an (N, 2) or (N, 3) array, got {self.points.shape}"
            )
        if len(self.labels) != len(self.points):
            raise InputError(self._what(), f"{len(self.labels)} labels for {len(self.points)} points")
        if len(set(self.labels)) != len(self.labels):
            raise InputError(self._what(), "labels are not unique")
        if self.descriptions is not None:
            self.descriptions = [str(d) for d in self.descriptions]
            if len(self.descriptions) != len(self.labels):
                raise InputError(
                    self._what(), f"{len(self.descriptions)} descriptions for {len(self)} points"
                )

    def _what(self) -> str:
        return f"landmark set '{self.name}'" if self.name else "landmark set"

    @property
    def dim(self) -> int:
        return int(self.points.shape[1])

    def __len__(self) -> int:
        return len(self.labels)

    def index(self, label: str) -> int:
        """Position of ``label`` in this set; InputError if absent."""
        try:
            return self.labels.index(str(label))
        except ValueError:
            raise InputError(self._what(), f"has no landmark labelled '{label}'") from None

    def subset(self, labels: list[str]) -> LandmarkSet:
        """The landmarks with ``labels``, in that order."""
        rows = [self.index(label) for label in labels]
        descriptions = None if self.descriptions is None else [self.descriptions[i] for i in rows]
        return LandmarkSet([self.labels[i] for i in rows], self.points[rows].copy(), descriptions, self.name)

    def points_3d(self) -> np.ndarray:
        """Positions as (N, 3); 2D points get z = 0."""
        if self.dim == 3:
            return self.points.copy()
        return np.column_stack([self.points, np.zeros(len(self))])

    def as_2d(self) -> LandmarkSet:
        """The same set with z dropped (for 2D images stored as z = 0 in 3D files)."""
        return LandmarkSet(list(self.labels), self.points[:, :2].copy(), self.descriptions, self.name)

    def description(self, i: int) -> str:
        return "" if self.descriptions is None else self.descriptions[i]


def landmark_file_stem(path: str | os.PathLike) -> str:
    """File name without its landmark extension ('case1.mrk.json' -> 'case1')."""
    name = Path(path).name
    for ext in (".mrk.json", ".json", ".fcsv", ".csv"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return Path(path).stem


def _format_of(path: Path, what: str) -> str:
    name = path.name.lower()
    if name.endswith(".json"):
        return "json"
    if name.endswith(".fcsv"):
        return "fcsv"
    if name.endswith(".csv"):
        return "csv"
    raise InputError(f"{what} '{path}'", "unknown landmark file type (use .mrk.json, .fcsv or .csv)")


def read_landmarks(
    path: str | os.PathLike, what: str = "landmarks", dimension: int | None = None
) -> LandmarkSet:
    """Read a landmark file (.mrk.json, .fcsv, .csv) into an LPS :class:`LandmarkSet`.

    ``dimension=2`` drops z (files store 2D landmarks with z = 0).
    """
    path = Path(path)
    label = f"{what} '{path}'"
    fmt = _format_of(path, what)
    if not path.is_file():
        raise InputError(label, "file does not exist")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(label, f"cannot be read as text: {exc}") from None
    reader = {"json": _parse_markups_json, "fcsv": _parse_fcsv, "csv": _parse_csv}[fmt]
    labels, points, descriptions = reader(text, label)
    if not labels:
        raise InputError(label, "contains no control points")
    if np.all(np.isnan(points)):
        raise InputError(label, "none of its control points has a defined position")
    landmarks = LandmarkSet(
        labels, np.array(points, dtype=np.float64), descriptions, landmark_file_stem(path)
    )
    if dimension == 2 and landmarks.dim == 3:
        return landmarks.as_2d()
    if dimension == 3 and landmarks.dim == 2:
        raise InputError(label, "holds 2D landmarks, but 3D landmarks are needed")
    return landmarks


def _coordinate_flip(system: str, label: str) -> np.ndarray:
    """Factor that turns the file's coordinates into LPS."""
    normalized = str(system).strip().upper()
    if normalized in ("LPS", "1"):
        return np.ones(3)
    if normalized in ("RAS", "0"):
        return LPS_RAS_FLIP
    raise InputError(label, f"unknown coordinate system '{system}' (expected LPS or RAS)")


def _parse_markups_json(text: str, label: str) -> tuple[list[str], list, list[str]]:
    try:
        document = json.loads(text)
        markup = document["markups"][0]
    except (json.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
        raise InputError(label, f"not a Slicer markups JSON file ({type(exc).__name__}: {exc})") from None
    flip = _coordinate_flip(markup.get("coordinateSystem", "LPS"), label)
    labels, points, descriptions = [], [], []
    for i, point in enumerate(markup.get("controlPoints") or []):
        labels.append(str(point.get("label", f"{i + 1}")))
        descriptions.append(str(point.get("description", "")))
        if point.get("positionStatus", "defined") in _MISSING_STATUSES or "position" not in point:
            points.append([np.nan] * 3)
            continue
        try:
            points.append(np.asarray(point["position"], dtype=np.float64).reshape(3) * flip)
        except (ValueError, TypeError):
            raise InputError(
                label, f"control point {i} has an invalid position {point['position']!r}"
            ) from None
    return labels, points, descriptions


def _parse_fcsv(text: str, label: str) -> tuple[list[str], list, list[str]]:
    flip = LPS_RAS_FLIP  # Slicer's legacy default is RAS when the header does not say
    columns = FCSV_COLUMNS.split(",")
    labels, points, descriptions = [], [], []
    for row in csv.reader(io.StringIO(text)):
        if not row or not "".join(row).strip():
            continue
        if row[0].lstrip().startswith("#"):
            header = ",".join(row).lstrip("# ").strip()
            system = re.match(r"CoordinateSystem\s*=\s*(\S+)", header)
            if system:
                flip = _coordinate_flip(system.group(1), label)
            elif header.startswith("columns"):
                columns = [c.strip() for c in header.split("=", 1)[1].split(",")]
            continue
        fields = dict(zip(columns, row, strict=False))
        try:
            position = np.array([float(fields[c]) for c in ("x", "y", "z")]) * flip
        except (KeyError, ValueError):
            raise InputError(label, f"line {row!r} has no valid x,y,z") from None
        labels.append(fields.get("label", str(len(labels) + 1)))
        descriptions.append(fields.get("desc", ""))
        points.append(position)
    return labels, points, descriptions


def _parse_csv(text: str, label: str) -> tuple[list[str], list, list[str]]:
    rows = [row for row in csv.reader(io.StringIO(text)) if row and "".join(row).strip()]
    if rows and not _is_number(rows[0][1] if len(rows[0]) > 1 else ""):
        rows = rows[1:]  # header
    labels, points = [], []
    for row in rows:
        values = [v for v in row[1:] if v.strip() != ""]
        if len(values) not in (2, 3):
            raise InputError(label, f"line {row!r} is not 'label,x,y[,z]'")
        try:
            points.append([float(v) for v in values])
        except ValueError:
            raise InputError(label, f"line {row!r} has a non-numeric coordinate") from None
        labels.append(row[0].strip())
    if len({len(p) for p in points}) > 1:
        raise InputError(label, "mixes 2D and 3D rows")
    return labels, points, None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def write_landmarks(path: str | os.PathLike, landmarks: LandmarkSet) -> None:
    """Write ``landmarks`` (LPS) to ``path`` by extension, atomically; 2D points get z = 0."""
    path = Path(path)
    fmt = _format_of(path, "landmark output file")
    if fmt == "csv":
        text = _format_csv(landmarks)
    else:
        text = _format_markups_json(landmarks) if fmt == "json" else _format_fcsv(landmarks)
    write_text_atomic(path, text)


def _format_markups_json(landmarks: LandmarkSet) -> str:
    control_points = []
    for i, (label, position) in enumerate(zip(landmarks.labels, landmarks.points_3d(), strict=True)):
        missing = bool(np.any(np.isnan(position)))
        control_points.append(
            {
                "id": str(i + 1),
                "label": label,
                "description": landmarks.description(i),
                "associatedNodeID": "",
                "position": [0.0, 0.0, 0.0] if missing else [float(v) for v in position],
                "orientation": [-1.0, -0.0, -0.0, -0.0, -1.0, -0.0, 0.0, 0.0, 1.0],
                "selected": True,
                "locked": False,
                "visibility": True,
                "positionStatus": "missing" if missing else "defined",
            }
        )
    markup = {
        "type": "Fiducial",
        "coordinateSystem": "LPS",
        "coordinateUnits": "mm",
        "locked": False,
        "fixedNumberOfControlPoints": False,
        "labelFormat": "%N-%d",
        "lastUsedControlPointNumber": len(control_points),
        "controlPoints": control_points,
        "measurements": [],
    }
    return json.dumps({"@schema": MARKUPS_SCHEMA, "markups": [markup]}, indent=4) + "\n"


def _format_fcsv(landmarks: LandmarkSet) -> str:
    out = io.StringIO()
    out.write("# Markups fiducial file version = 4.11\n# CoordinateSystem = LPS\n")
    out.write(f"# columns = {FCSV_COLUMNS}\n")
    writer = csv.writer(out, lineterminator="\n")
    for i, (label, position) in enumerate(zip(landmarks.labels, landmarks.points_3d(), strict=True)):
        x, y, z = (repr(float(v)) for v in position)
        writer.writerow([i + 1, x, y, z, 0, 0, 0, 1, 1, 1, 0, label, landmarks.description(i), ""])
    return out.getvalue()


def _format_csv(landmarks: LandmarkSet) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["label", "x", "y", "z"][: 1 + landmarks.dim])
    for label, position in zip(landmarks.labels, landmarks.points, strict=True):
        writer.writerow([label, *(repr(float(v)) for v in position)])
    return out.getvalue()
