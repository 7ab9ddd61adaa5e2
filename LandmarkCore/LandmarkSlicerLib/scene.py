"""Scene-side helpers of every module's Logic: node checks, results into markups nodes, error tables."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import slicer
import vtk
from LandmarkCoreLib.errors import InputError
from LandmarkCoreLib.evaluation import radial_errors, stack_by_labels
from LandmarkCoreLib.landmarks import LandmarkSet

from .mrml_bridge import (
    landmarks_to_markups_node,
    markups_node_to_landmarks,
    planar_landmarks_to_world,
    set_markups_points,
)


def path_is_set(path: Any) -> bool:
    """A path parameter the user has filled in (the parameter node stores an unset path as '.')."""
    return path is not None and str(path) not in ("", ".")


def require_path(path: Any, what: str) -> Path:
    """``path`` as a Path; InputError naming ``what`` when it was left empty."""
    if not path_is_set(path):
        raise InputError(what, "no file name given")
    return Path(path)


def require_node(node: object, what: str) -> None:
    """InputError naming ``what`` when no node was selected."""
    if node is None:
        raise InputError(what, "no node selected")


def scene_of(*nodes: object) -> Any:
    """The MRML scene the given nodes live in (the first node that has one), else ``slicer.mrmlScene``."""
    for node in nodes:
        if node is not None and node.GetScene() is not None:
            return node.GetScene()
    return slicer.mrmlScene


def new_or_given_node(node: Any, scene: Any, class_name: str, name: str) -> Any:
    """``node`` itself, or a new node of ``class_name`` added to ``scene`` under a unique ``name``."""
    if node is not None:
        return node
    return scene.AddNewNodeByClass(class_name, scene.GenerateUniqueName(name))


def landmarks_into_node(
    landmarks: LandmarkSet, volume_node: Any, output_node: Any = None, name: str | None = None
) -> Any:
    """Put ``landmarks`` (LPS; 2D ones onto the volume's slice plane) into ``output_node`` or a new node
    (named ``name``, by default "<volume> landmarks", made unique in the scene)."""
    world = planar_landmarks_to_world(landmarks, volume_node)
    if output_node is not None:
        set_markups_points(output_node, world)
        return output_node
    scene = scene_of(volume_node)
    return landmarks_to_markups_node(
        world, scene, scene.GenerateUniqueName(name or f"{volume_node.GetName()} landmarks")
    )


def image_files(folder: Any, suffixes: Sequence[str]) -> list[Path]:
    """The image files of ``folder`` (sorted); InputError if it is missing or holds none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"input folder '{folder}'", "does not exist")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(tuple(suffixes)))
    if not files:
        raise InputError(f"input folder '{folder}'", f"holds no image ({', '.join(suffixes)})")
    return files


def radial_errors_by_label(detected: LandmarkSet, truth: LandmarkSet) -> tuple[list[str], np.ndarray]:
    """The ground truth's labels and the radial error of each (mm; NaN where not detected)."""
    if not set(truth.labels) & set(detected.labels):
        raise InputError("ground-truth landmarks", "no label in common with the detected landmarks")
    labels = list(truth.labels)
    errors = radial_errors(stack_by_labels([detected], labels), stack_by_labels([truth], labels))[0]
    return labels, errors


def fill_error_table(table_node: Any, labels: list[str], errors: np.ndarray) -> float:
    """Write one row per landmark (label, radial error in mm) and a 'mean' row; returns the mean."""
    label_column = vtk.vtkStringArray()
    label_column.SetName("Landmark")
    error_column = vtk.vtkDoubleArray()
    error_column.SetName("Radial error (mm)")
    valid = errors[np.isfinite(errors)]
    mean = float(valid.mean()) if valid.size else float("nan")
    for label, error in [*zip(labels, errors, strict=True), ("mean", mean)]:
        label_column.InsertNextValue(str(label))
        error_column.InsertNextValue(float(error))
    table = table_node.GetTable()
    was_modifying = table_node.StartModify()
    table.Initialize()
    table.AddColumn(label_column)
    table.AddColumn(error_column)
    table_node.EndModify(was_modifying)
    table_node.Modified()
    return mean


def evaluate_markups(detected_node: Any, truth_node: Any, table_node: Any = None) -> tuple[Any, float]:
    """Radial error of each ground-truth landmark (matched by label) into a table node; the mean (mm)."""
    require_node(detected_node, "detected landmarks")
    require_node(truth_node, "ground-truth landmarks")
    labels, errors = radial_errors_by_label(
        markups_node_to_landmarks(detected_node), markups_node_to_landmarks(truth_node)
    )
    table = new_or_given_node(
        table_node, scene_of(detected_node), "vtkMRMLTableNode", f"{detected_node.GetName()} errors"
    )
    return table, fill_error_table(table, labels, errors)


def load_image_node(path: Any, scene: Any = None) -> Any:
    """Load one image file as a volume node; a numbered 2D image beside its siblings stays one image.

    Slicer's volume reader otherwise reads ``001.jpg, 002.jpg, ...`` as one 3D stack.
    """
    from LandmarkCoreLib.images import read_image

    from .mrml_bridge import image_to_volume_node

    path = Path(path)
    image = read_image(path, f"image '{path.name}'")
    scene = scene if scene is not None else slicer.mrmlScene
    return image_to_volume_node(image, scene, scene.GenerateUniqueName(path.name.split(".")[0]))
