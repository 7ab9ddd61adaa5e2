"""Binary masks from Slicer segmentations (``.seg.nrrd``) and label maps.

A ``.seg.nrrd`` stores segments as label values in one or more layers (a 4D NRRD whose first axis is
the layer, which SimpleITK reads as vector pixels) and describes them in header fields
``SegmentN_ID``, ``SegmentN_Name``, ``SegmentN_LabelValue`` and ``SegmentN_Layer``. Files written by
Slicer before layers existed have one segment per component with label value 1.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .errors import InputError
from .images import read_image


@dataclass(frozen=True)
class SegmentInfo:
    """One segment described in a ``.seg.nrrd`` header."""

    index: int
    segment_id: str
    name: str
    label_value: int
    layer: int


def segments_in_image(image: sitk.Image) -> list[SegmentInfo]:
    """Segments described in the metadata of a ``.seg.nrrd`` image (empty for label maps)."""
    keys = set(image.GetMetaDataKeys())
    indices = sorted({int(m.group(1)) for k in keys if (m := re.fullmatch(r"Segment(\d+)_\w+", k))})
    layered = image.GetNumberOfComponentsPerPixel() > 1

    def field(i: int, name: str, default: str) -> str:
        key = f"Segment{i}_{name}"
        return image.GetMetaData(key).strip() if key in keys else default

    return [
        SegmentInfo(
            index=i,
            segment_id=field(i, "ID", f"Segment_{i}"),
            name=field(i, "Name", field(i, "ID", f"Segment_{i}")),
            label_value=int(field(i, "LabelValue", "1")),
            layer=int(field(i, "Layer", str(i) if layered else "0")),
        )
        for i in indices
    ]


def list_segments(path: str | os.PathLike, what: str = "segmentation") -> list[SegmentInfo]:
    """Segments of a ``.seg.nrrd`` file (empty list for a plain label map)."""
    return segments_in_image(read_image(path, what))


def read_mask(
    path: str | os.PathLike,
    segment: str | int | None = None,
    reference: sitk.Image | None = None,
    what: str = "mask",
) -> sitk.Image:
    """Binary UInt8 (0/1) mask of one segment, in the file's geometry or resampled onto ``reference``.

    In a ``.seg.nrrd`` ``segment`` is a segment name or ID (str) or its index N (int); ``None`` is
    allowed when there is one segment. In a label map ``segment`` is a label value; ``None`` takes
    every non-zero voxel. An empty result raises InputError naming the file.
    """
    label = f"{what} '{Path(path)}'"
    image = read_image(path, what)
    segments = segments_in_image(image)
    if segments:
        chosen = _choose_segment(segments, segment, label)
        mask = _layer(image, chosen.layer, label) == chosen.label_value
        part = f"segment '{chosen.name}'"
    else:
        mask, part = _label_map_mask(image, segment, label)
    mask = sitk.Cast(mask, sitk.sitkUInt8)
    _require_foreground(mask, label, part)
    if reference is not None:
        mask = resample_mask(mask, reference)
        _require_foreground(mask, label, f"{part} resampled onto the reference image")
    return mask


def _choose_segment(segments: list[SegmentInfo], segment: str | int | None, label: str) -> SegmentInfo:
    names = ", ".join(f"{s.index}:'{s.name}'" for s in segments)
    if segment is None:
        if len(segments) == 1:
            return segments[0]
        raise InputError(label, f"has {len(segments)} segments ({names}); say which one")
    for s in segments:
        if isinstance(segment, int) and s.index == segment:
            return s
        if isinstance(segment, str) and segment in (s.name, s.segment_id):
            return s
    raise InputError(label, f"has no segment {segment!r} (it has {names})")


def _layer(image: sitk.Image, layer: int, label: str) -> sitk.Image:
    layers = image.GetNumberOfComponentsPerPixel()
    if layer >= layers:
        raise InputError(label, f"segment layer {layer} does not exist (the file has {layers})")
    return sitk.VectorIndexSelectionCast(image, layer) if layers > 1 else image


def _label_map_mask(image: sitk.Image, segment: str | int | None, label: str) -> tuple[sitk.Image, str]:
    if image.GetNumberOfComponentsPerPixel() > 1:
        raise InputError(label, "has multi-component pixels but no segment description; not a label map")
    if segment is None:
        return image != 0, "foreground"
    if isinstance(segment, str) and not segment.strip().lstrip("-").isdigit():
        raise InputError(label, f"is a label map without segment names; give a label value, not {segment!r}")
    return image == int(segment), f"label {int(segment)}"


def _require_foreground(mask: sitk.Image, label: str, part: str) -> None:
    if not np.any(sitk.GetArrayViewFromImage(mask)):
        raise InputError(label, f"{part} has no foreground voxels")


def resample_mask(mask: sitk.Image, reference: sitk.Image) -> sitk.Image:
    """``mask`` resampled (nearest neighbour) onto the grid of ``reference``; UInt8 0/1."""
    if mask.GetDimension() != reference.GetDimension():
        raise InputError(
            "mask", f"is {mask.GetDimension()}D but the reference image is {reference.GetDimension()}D"
        )
    binary = sitk.Cast(mask != 0, sitk.sitkUInt8)
    return sitk.Resample(binary, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
