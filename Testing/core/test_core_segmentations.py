"""Masks from .seg.nrrd (single and multi-layer, Slicer's header fields) and label maps."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from LandmarkCoreLib.errors import InputError
from LandmarkCoreLib.images import write_image
from LandmarkCoreLib.segmentations import list_segments, read_mask, resample_mask

SHAPE = (4, 5, 6)  # z, y, x
ORIGIN = (10.0, -20.0, 5.0)
SPACING = (0.5, 0.75, 2.0)


def write_seg_nrrd(path, layers: np.ndarray, segments: list[dict]) -> None:
    """Write a .seg.nrrd the way Slicer does: 3D for one layer, else 4D with a 'list' first axis."""
    layers = np.asarray(layers, dtype=np.uint8)  # (L, z, y, x)
    four_d = len(layers) > 1
    fields = [
        "NRRD0004",
        "type: unsigned char",
        f"dimension: {4 if four_d else 3}",
        "space: left-posterior-superior",
        f"sizes: {f'{len(layers)} ' if four_d else ''}{SHAPE[2]} {SHAPE[1]} {SHAPE[0]}",
        f"space directions: {'none ' if four_d else ''}"
        f"({SPACING[0]},0,0) (0,{SPACING[1]},0) (0,0,{SPACING[2]})",
        f"kinds: {'list ' if four_d else ''}domain domain domain",
        "encoding: raw",
        f"space origin: ({ORIGIN[0]},{ORIGIN[1]},{ORIGIN[2]})",
    ]
    for i, segment in enumerate(segments):
        fields += [f"Segment{i}_{key}:={value}" for key, value in segment.items()]
    data = np.moveaxis(layers, 0, -1) if four_d else layers[0]  # layer index varies fastest
    path.write_bytes(("\n".join(fields) + "\n\n").encode() + np.ascontiguousarray(data).tobytes())


def blocks() -> tuple[np.ndarray, np.ndarray]:
    first = np.zeros(SHAPE, np.uint8)
    first[1:3, 1:4, 2:5] = 1
    first[0, 0, 0] = 2
    second = np.zeros(SHAPE, np.uint8)
    second[2:4, 0:2, 0:3] = 3
    return first, second


def two_layer_seg_nrrd(path, segments: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Write the two :func:`blocks` as the two layers of ``path``; return the blocks."""
    first, second = blocks()
    write_seg_nrrd(path, np.stack([first, second]), segments)
    return first, second


def test_layered_seg_nrrd_by_name_index_and_id(tmp_path):
    path = tmp_path / "s.seg.nrrd"
    first, second = two_layer_seg_nrrd(
        path,
        [
            {"ID": "Segment_1", "Name": "skull", "LabelValue": 1, "Layer": 0},
            {"ID": "Segment_2", "Name": "tooth", "LabelValue": 2, "Layer": 0},
            {"ID": "Segment_3", "Name": "mandible", "LabelValue": 3, "Layer": 1},
        ],
    )
    assert [s.name for s in list_segments(path)] == ["skull", "tooth", "mandible"]
    skull = read_mask(path, "skull")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(skull), first == 1)
    assert skull.GetPixelID() == sitk.sitkUInt8
    assert skull.GetOrigin() == pytest.approx(ORIGIN) and skull.GetSpacing() == pytest.approx(SPACING)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read_mask(path, 2)), second == 3)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read_mask(path, "Segment_2")), first == 2)


def test_single_layer_seg_nrrd_default_segment(tmp_path):
    first, _ = blocks()
    path = tmp_path / "one.seg.nrrd"
    write_seg_nrrd(
        path, first[None] * (first == 1), [{"ID": "S", "Name": "bone", "LabelValue": 1, "Layer": 0}]
    )
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read_mask(path)), first == 1)


def test_segment_choice_errors_name_the_file(tmp_path):
    path = tmp_path / "two.seg.nrrd"
    two_layer_seg_nrrd(
        path, [{"Name": "a", "LabelValue": 1, "Layer": 0}, {"Name": "b", "LabelValue": 3, "Layer": 1}]
    )
    with pytest.raises(InputError, match=r"two\.seg\.nrrd'?: has 2 segments"):
        read_mask(path)
    with pytest.raises(InputError, match=r"two\.seg\.nrrd'?: has no segment 'zz'"):
        read_mask(path, "zz")


def test_label_map_values_and_foreground(tmp_path):
    first, _ = blocks()
    image = sitk.GetImageFromArray(first)
    image.SetSpacing(SPACING)
    write_image(tmp_path / "labels.nii.gz", image)
    np.testing.assert_array_equal(
        sitk.GetArrayFromImage(read_mask(tmp_path / "labels.nii.gz", 2)), first == 2
    )
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read_mask(tmp_path / "labels.nii.gz")), first > 0)


def test_empty_mask_names_the_file(tmp_path):
    write_image(tmp_path / "empty_mask.nrrd", sitk.Image(5, 5, 5, sitk.sitkUInt8))
    with pytest.raises(
        InputError, match=r"SOI mask '.*empty_mask\.nrrd': foreground has no foreground voxels"
    ):
        read_mask(tmp_path / "empty_mask.nrrd", what="SOI mask")
    first, _ = blocks()
    write_image(tmp_path / "labels.nrrd", sitk.GetImageFromArray(first))
    with pytest.raises(InputError, match=r"labels\.nrrd'?: label 7 has no foreground"):
        read_mask(tmp_path / "labels.nrrd", 7)


def test_missing_mask_file_names_the_file(tmp_path):
    with pytest.raises(InputError, match=r"mask '.*gone\.seg\.nrrd': file does not exist"):
        read_mask(tmp_path / "gone.seg.nrrd")


def test_resample_onto_finer_reference_keeps_physical_extent():
    mask = sitk.Image(4, 4, 4, sitk.sitkUInt8)
    mask.SetSpacing((2.0, 2.0, 2.0))
    mask[1, 1, 1] = 1  # physical cube [1, 3) mm on every axis
    reference = sitk.Image(8, 8, 8, sitk.sitkFloat32)
    out = resample_mask(mask, reference)
    expected = np.zeros((8, 8, 8), bool)
    expected[1:3, 1:3, 1:3] = True  # centres at 1 and 2 mm fall in [1, 3)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(out).astype(bool), expected)
    assert out.GetPixelID() == sitk.sitkUInt8


def test_read_mask_onto_reference(tmp_path):
    first, _ = blocks()
    image = sitk.GetImageFromArray((first == 1).astype(np.uint8))
    write_image(tmp_path / "m.nrrd", image)
    reference = sitk.Image(12, 10, 8, sitk.sitkUInt8)
    reference.SetSpacing((0.5, 0.5, 0.5))
    out = read_mask(tmp_path / "m.nrrd", reference=reference)
    assert out.GetSize() == (12, 10, 8)
    assert int(sitk.GetArrayFromImage(out).sum()) == int((first == 1).sum()) * 8
