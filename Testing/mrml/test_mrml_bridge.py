"""MRML bridge against the real slicer-core wheel: volumes, markups, segmentations, storage nodes."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import slicer  # the real slicer-core wheel; a missing wheel fails the suite, never skips
import vtk
from LandmarkCoreLib.errors import InputError
from LandmarkCoreLib.landmarks import LandmarkSet, read_landmarks, write_landmarks
from LandmarkCoreLib.segmentations import read_mask
from LandmarkSlicerLib import mrml_bridge
from vtk.util import numpy_support


@pytest.fixture
def scene():
    return mrml_bridge.new_scene_with_logic()


def oblique_image(components: int = 1) -> sitk.Image:
    rng = np.random.default_rng(1)
    shape = (5, 6, 7) + ((components,) if components > 1 else ())
    image = sitk.GetImageFromArray(rng.integers(0, 255, shape).astype(np.uint8), isVector=components > 1)
    image.SetDirection(sitk.VersorTransform((0.3, 0.5, -0.8), 0.9).GetMatrix())
    image.SetOrigin((-20.0, 15.5, 3.25))
    image.SetSpacing((0.4, 0.7, 1.3))
    return image


def _ras_of_ijk(node, ijk) -> np.ndarray:
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return np.array(matrix.MultiplyPoint([*map(float, ijk), 1.0])[:3])


def test_voxel_physical_point_equals_lps_of_ijk_to_ras(scene):
    image = oblique_image()
    node = mrml_bridge.image_to_volume_node(image, scene, "oblique")
    for ijk in [(0, 0, 0), (6, 5, 4), (2, 3, 1)]:
        lps = np.array(image.TransformIndexToPhysicalPoint(ijk))
        np.testing.assert_allclose(_ras_of_ijk(node, ijk) * [-1, -1, 1], lps, atol=1e-9)


@pytest.mark.parametrize("components", [1, 3])
def test_volume_round_trip_keeps_voxels_and_geometry(scene, components):
    image = oblique_image(components)
    node = mrml_bridge.image_to_volume_node(image, scene, "v")
    expected = "vtkMRMLVectorVolumeNode" if components == 3 else "vtkMRMLScalarVolumeNode"
    assert node.GetClassName() == expected and node.GetDisplayNode() is not None
    back = mrml_bridge.volume_node_to_image(node)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(image))
    np.testing.assert_allclose(back.GetOrigin(), image.GetOrigin(), atol=1e-9)
    np.testing.assert_allclose(back.GetSpacing(), image.GetSpacing(), atol=1e-9)
    np.testing.assert_allclose(back.GetDirection(), image.GetDirection(), atol=1e-9)


def test_volume_read_by_slicer_storage_node_matches_simpleitk(scene, tmp_path):
    image = oblique_image()
    sitk.WriteImage(image, str(tmp_path / "v.nrrd"))
    node = slicer.vtkMRMLScalarVolumeNode()
    scene.AddNode(node)
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(tmp_path / "v.nrrd"))
    assert storage.ReadData(node)
    lps = np.array(image.TransformIndexToPhysicalPoint((3, 2, 1)))
    np.testing.assert_allclose(_ras_of_ijk(node, (3, 2, 1)) * [-1, -1, 1], lps, atol=1e-4)
    back = mrml_bridge.volume_node_to_image(node)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(image))


def test_linear_parent_transform_is_applied(scene):
    node = mrml_bridge.image_to_volume_node(oblique_image(), scene, "moved", create_display=False)
    transform = slicer.vtkMRMLLinearTransformNode()
    scene.AddNode(transform)
    shift = vtk.vtkMatrix4x4()
    shift.SetElement(0, 3, 10.0)  # +10 mm towards Right = -10 in LPS x
    transform.SetMatrixTransformToParent(shift)
    node.SetAndObserveTransformNodeID(transform.GetID())
    moved = mrml_bridge.volume_node_to_image(node)
    assert moved.GetOrigin()[0] == pytest.approx(oblique_image().GetOrigin()[0] - 10.0)


def test_2d_image_becomes_single_slice_volume(scene):
    photo = sitk.Image(30, 20, sitk.sitkUInt8)
    photo.SetSpacing((0.1, 0.1))
    node = mrml_bridge.image_to_volume_node(photo, scene, "photo")
    assert node.GetImageData().GetDimensions() == (30, 20, 1)
    np.testing.assert_allclose(_ras_of_ijk(node, (10, 5, 0)), [-1.0, -0.5, 0.0])
    back = mrml_bridge.volume_node_to_image(node, dimension=2)
    assert back.GetSize() == (30, 20) and back.GetSpacing() == pytest.approx((0.1, 0.1))
    with pytest.raises(InputError, match="volume 'photo': is a 2D image"):
        mrml_bridge.volume_node_to_image(node, dimension=3)


LANDMARKS = LandmarkSet(
    ["nasion", "sella", "gone"],
    [[12.345678901, -45.678901234, 78.901234567], [-0.5, 0.25, -1e-3], [np.nan] * 3],
    ["first", "", "not visible"],
    "lms",
)


def test_markups_round_trip_in_memory(scene):
    node = mrml_bridge.landmarks_to_markups_node(LANDMARKS, scene, "F")
    ras = [0.0, 0.0, 0.0]
    node.GetNthControlPointPosition(0, ras)
    np.testing.assert_allclose(ras, LANDMARKS.points[0] * [-1, -1, 1])
    assert node.GetNthControlPointPositionStatus(2) == node.PositionMissing
    back = mrml_bridge.markups_node_to_landmarks(node)
    assert back.labels == LANDMARKS.labels and back.descriptions == LANDMARKS.descriptions
    np.testing.assert_allclose(back.points, LANDMARKS.points, atol=1e-12)


def test_markups_node_saved_by_slicer_reads_back_within_1e6_mm(scene, tmp_path):
    node = mrml_bridge.landmarks_to_markups_node(LANDMARKS.subset(["nasion", "sella"]), scene, "F")
    storage = slicer.vtkMRMLMarkupsJsonStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(tmp_path / "saved.mrk.json"))
    assert storage.WriteData(node)
    back = read_landmarks(tmp_path / "saved.mrk.json")
    assert back.labels == ["nasion", "sella"]
    assert np.abs(back.points - LANDMARKS.points[:2]).max() < 1e-6


@pytest.mark.parametrize("ext", [".mrk.json", ".fcsv"])
def test_file_written_here_is_read_by_slicer_storage_node(scene, tmp_path, ext):
    path = tmp_path / f"ours{ext}"
    write_landmarks(path, LANDMARKS.subset(["nasion", "sella"]))
    storage = (
        slicer.vtkMRMLMarkupsJsonStorageNode()
        if ext == ".mrk.json"
        else slicer.vtkMRMLMarkupsFiducialStorageNode()
    )
    scene.AddNode(storage)
    storage.SetFileName(str(path))
    node = slicer.vtkMRMLMarkupsFiducialNode()
    scene.AddNode(node)
    assert storage.ReadData(node)
    back = mrml_bridge.markups_node_to_landmarks(node)
    assert back.labels == ["nasion", "sella"]
    assert np.abs(back.points - LANDMARKS.points[:2]).max() < 1e-6


def test_empty_markups_node_is_refused(scene):
    node = slicer.vtkMRMLMarkupsFiducialNode()
    node.SetName("nothing placed")
    scene.AddNode(node)
    with pytest.raises(InputError, match="markups 'nothing placed': contains no control points"):
        mrml_bridge.markups_node_to_landmarks(node)


def _segmentation_with_block(scene, reference_node):
    """A segmentation whose 'bone' segment is a block of the reference grid, and that block."""
    block = np.zeros((5, 6, 7), np.uint8)
    block[1:4, 2:5, 3:6] = 1
    labelmap = slicer.vtkOrientedImageData()  # covers only the block: its extent does not start at 0
    labelmap.SetExtent(3, 5, 2, 4, 1, 3)
    labelmap.GetPointData().SetScalars(numpy_support.numpy_to_vtk(np.ones(27, np.uint8), deep=True))
    matrix = vtk.vtkMatrix4x4()
    reference_node.GetIJKToRASMatrix(matrix)
    labelmap.SetImageToWorldMatrix(matrix)
    segmentation = slicer.vtkMRMLSegmentationNode()
    segmentation.SetName("seg")
    scene.AddNode(segmentation)
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(reference_node)
    segmentation.AddSegmentFromBinaryLabelmapRepresentation(labelmap, "bone", [1.0, 0.0, 0.0])
    return segmentation, block


def test_segment_to_mask_equals_source_mask(scene):
    image = oblique_image()
    reference = mrml_bridge.image_to_volume_node(image, scene, "ref")
    segmentation, block = _segmentation_with_block(scene, reference)
    segment_id = segmentation.GetSegmentation().GetSegmentIdBySegmentName("bone")
    mask = mrml_bridge.segment_to_mask(segmentation, segment_id, reference)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(mask), block)
    np.testing.assert_allclose(mask.GetDirection(), image.GetDirection(), atol=1e-9)
    np.testing.assert_array_equal(
        sitk.GetArrayFromImage(mrml_bridge.segment_to_mask(segmentation, "bone", reference)), block
    )
    with pytest.raises(InputError, match="has no segment 'skin'"):
        mrml_bridge.segment_to_mask(segmentation, "skin", reference)


def test_seg_nrrd_written_by_slicer_is_read_by_read_mask(scene, tmp_path):
    image = oblique_image()
    reference = mrml_bridge.image_to_volume_node(image, scene, "ref")
    segmentation, block = _segmentation_with_block(scene, reference)
    storage = slicer.vtkMRMLSegmentationStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(tmp_path / "s.seg.nrrd"))
    assert storage.WriteData(segmentation)
    mask = read_mask(tmp_path / "s.seg.nrrd", "bone", reference=image)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(mask), block)


def test_2d_landmarks_land_on_the_slice_plane_of_an_oblique_transformed_image(scene):
    """Pixel (i, j) found on the 2D view of a single-slice volume maps back to that voxel's world point."""
    image = sitk.JoinSeries(sitk.Image([30, 20], sitk.sitkUInt8))
    image.SetDirection(sitk.VersorTransform((0.2, -0.4, 0.9), 0.7).GetMatrix())
    image.SetOrigin((4.0, -7.5, 12.25))
    image.SetSpacing((0.3, 0.5, 2.0))
    node = mrml_bridge.image_to_volume_node(image, scene, "tilted slice", create_display=False)
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "shift")
    matrix = vtk.vtkMatrix4x4()
    matrix.SetElement(0, 3, 5.0)
    matrix.SetElement(2, 3, -3.0)
    transform.SetMatrixTransformToParent(matrix)
    node.SetAndObserveTransformNodeID(transform.GetID())
    plane = mrml_bridge.volume_node_to_image(node, dimension=2)
    pixels = [(0, 0), (29, 0), (7, 13), (29, 19)]
    found = LandmarkSet(
        ["a", "b", "c", "d"], np.array([plane.TransformIndexToPhysicalPoint(p) for p in pixels])
    )
    world = mrml_bridge.planar_landmarks_to_world(found, node)
    expected = np.array([_ras_of_ijk(node, (i, j, 0)) for i, j in pixels]) + [5.0, 0.0, -3.0]
    np.testing.assert_allclose(world.points * [-1, -1, 1], expected, atol=1e-9)
