"""Conversions between MRML nodes (RAS) and LandmarkCoreLib's types (SimpleITK images, LandmarkSet; LPS).

Runs inside the Slicer application and in plain Python with the ``slicer-core`` wheel (which the tests
use). Node geometry follows MRML: ``IJKToRAS = [directions * spacing | origin]`` in RAS; SimpleITK's is
the same matrix in LPS, i.e. with its first two rows negated. Linear parent transforms are applied
("hardened"); a node under a non-linear transform is refused rather than silently misplaced.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
import slicer
import vtk
from LandmarkCoreLib.errors import InputError
from LandmarkCoreLib.images import conform_dimension
from LandmarkCoreLib.landmarks import LPS_RAS_FLIP, LandmarkSet
from LandmarkCoreLib.segmentations import resample_mask
from vtk.util import numpy_support

_RAS_LPS = np.diag([*LPS_RAS_FLIP, 1.0])  # 4x4; its own inverse


def _matrix_to_numpy(matrix: vtk.vtkMatrix4x4) -> np.ndarray:
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def _numpy_to_matrix(array: np.ndarray) -> vtk.vtkMatrix4x4:
    matrix = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            matrix.SetElement(r, c, float(array[r, c]))
    return matrix


def _to_world(node) -> np.ndarray:
    """4x4 transform from the node's local RAS to world RAS (identity when not transformed)."""
    parent = node.GetParentTransformNode()
    if parent is None:
        return np.eye(4)
    if not parent.IsTransformToWorldLinear():
        raise InputError(f"node '{node.GetName()}'", "is under a non-linear transform; harden it first")
    matrix = vtk.vtkMatrix4x4()
    parent.GetMatrixTransformToWorld(matrix)
    return _matrix_to_numpy(matrix)


def _geometry_from_ijk_to_lps(ijk_to_lps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Origin, spacing and direction (3x3) of an index-to-LPS matrix."""
    linear = ijk_to_lps[:3, :3]
    spacing = np.linalg.norm(linear, axis=0)
    return ijk_to_lps[:3, 3], spacing, linear / spacing


# --------------------------------------------------------------------------- volumes
def volume_node_to_image(node, dimension: int | None = None) -> sitk.Image:
    """SimpleITK image (LPS geometry) of a scalar or vector (e.g. RGB) volume node; voxels copied.

    ``dimension=2`` turns a single-slice volume (a photograph or radiograph loaded into Slicer) into a
    2D image; ``dimension=3`` refuses single-slice volumes (InputError naming the node).
    """
    image_data = node.GetImageData() if node is not None else None
    if image_data is None or image_data.GetPointData().GetScalars() is None:
        raise InputError(f"volume '{node.GetName() if node else None}'", "has no image data")
    dims = image_data.GetDimensions()
    components = image_data.GetNumberOfScalarComponents()
    voxels = numpy_support.vtk_to_numpy(image_data.GetPointData().GetScalars())
    shape = (dims[2], dims[1], dims[0]) + ((components,) if components > 1 else ())
    image = sitk.GetImageFromArray(voxels.reshape(shape).copy(), isVector=components > 1)
    _set_geometry_from_node(image, node)
    return conform_dimension(image, dimension, f"volume '{node.GetName()}'")


def _ijk_to_lps(node) -> np.ndarray:
    ijk_to_ras = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(ijk_to_ras)
    return _RAS_LPS @ _to_world(node) @ _matrix_to_numpy(ijk_to_ras)


def _set_geometry_from_node(image: sitk.Image, node) -> None:
    origin, spacing, direction = _geometry_from_ijk_to_lps(_ijk_to_lps(node))
    image.SetOrigin(tuple(origin))
    image.SetSpacing(tuple(spacing))
    image.SetDirection(tuple(direction.ravel()))


def _geometry_image(node) -> sitk.Image:
    """An empty UInt8 image on the voxel grid of a volume node (for resampling onto it)."""
    image_data = node.GetImageData() if node is not None else None
    if image_data is None:
        raise InputError(f"reference volume '{node.GetName() if node else None}'", "has no image data")
    image = sitk.Image(list(image_data.GetDimensions()), sitk.sitkUInt8)
    _set_geometry_from_node(image, node)
    return image


def _image_3d(image: sitk.Image) -> sitk.Image:
    """2D images become single-slice volumes (z spacing 1, origin z 0) so MRML can hold them."""
    if image.GetDimension() == 3:
        return image
    if image.GetDimension() != 2:
        raise InputError("image", f"{image.GetDimension()}D images cannot become volume nodes")
    return sitk.JoinSeries(image)


def image_to_volume_node(image: sitk.Image, scene, name: str, create_display: bool = True):
    """Add a scalar (or, for multi-component pixels, vector) volume node holding ``image`` to ``scene``."""
    image = _image_3d(image)
    components = image.GetNumberOfComponentsPerPixel()
    voxels = np.ascontiguousarray(sitk.GetArrayViewFromImage(image))
    node = slicer.vtkMRMLVectorVolumeNode() if components > 1 else slicer.vtkMRMLScalarVolumeNode()
    node.SetName(name)
    image_data = vtk.vtkImageData()
    image_data.SetDimensions(*image.GetSize())
    scalars = numpy_support.numpy_to_vtk(voxels.reshape(-1, components), deep=True)
    image_data.GetPointData().SetScalars(scalars)
    node.SetAndObserveImageData(image_data)
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    ijk_to_lps = np.eye(4)
    ijk_to_lps[:3, :3] = direction @ np.diag(image.GetSpacing())
    ijk_to_lps[:3, 3] = image.GetOrigin()
    node.SetIJKToRASMatrix(_numpy_to_matrix(_RAS_LPS @ ijk_to_lps))
    scene.AddNode(node)
    if create_display:
        node.CreateDefaultDisplayNodes()
    return node


def planar_landmarks_to_world(landmarks: LandmarkSet, node) -> LandmarkSet:
    """2D landmarks found on ``volume_node_to_image(node, dimension=2)`` as 3D world LPS points.

    They land on the node's slice plane: the volume's origin z, direction and parent transforms are
    honoured (a plain z = 0 would put them off the image whenever the slice is not at z = 0).
    """
    if landmarks.dim == 3:
        return landmarks
    ijk_to_lps = _ijk_to_lps(node)  # the 2D image's geometry is its first two rows and columns
    index = np.linalg.solve(ijk_to_lps[:2, :2], (landmarks.points - ijk_to_lps[:2, 3]).T).T
    ijk = np.column_stack([index, np.zeros(len(index)), np.ones(len(index))])
    world = (ijk_to_lps @ ijk.T).T[:, :3]
    world[np.isnan(landmarks.points).any(axis=1)] = np.nan
    return LandmarkSet(list(landmarks.labels), world, landmarks.descriptions, landmarks.name)


# --------------------------------------------------------------------------- markups
def markups_node_to_landmarks(node) -> LandmarkSet:
    """Control points (world RAS) of a markups node as an LPS LandmarkSet; missing points are NaN."""
    what = f"markups '{node.GetName() if node else None}'"
    count = node.GetNumberOfControlPoints() if node is not None else 0
    if count == 0:
        raise InputError(what, "contains no control points")
    points = np.full((count, 3), np.nan)
    for i in range(count):
        if node.GetNthControlPointPositionStatus(i) == node.PositionDefined:
            position = [0.0, 0.0, 0.0]
            node.GetNthControlPointPositionWorld(i, position)
            points[i] = np.asarray(position) * LPS_RAS_FLIP
    labels = [node.GetNthControlPointLabel(i) for i in range(count)]
    descriptions = [node.GetNthControlPointDescription(i) for i in range(count)]
    return LandmarkSet(labels, points, descriptions, node.GetName())


def landmarks_to_markups_node(landmarks: LandmarkSet, scene, name: str, create_display: bool = True):
    """Add a point-list (fiducial) node with ``landmarks`` (LPS -> RAS; 2D -> z = 0) to ``scene``."""
    node = slicer.vtkMRMLMarkupsFiducialNode()
    node.SetName(name)
    scene.AddNode(node)
    if create_display:
        node.CreateDefaultDisplayNodes()
    set_markups_points(node, landmarks)
    return node


def set_markups_points(node, landmarks: LandmarkSet) -> None:
    """Replace the control points of ``node`` with ``landmarks`` (positions in world RAS)."""
    was_modifying = node.StartModify()
    node.RemoveAllControlPoints()
    for i, (label, position) in enumerate(zip(landmarks.labels, landmarks.points_3d(), strict=True)):
        missing = bool(np.isnan(position).any())
        ras = [0.0, 0.0, 0.0] if missing else [float(v) for v in position * LPS_RAS_FLIP]
        index = node.AddControlPointWorld(vtk.vtkVector3d(*ras), label)
        node.SetNthControlPointDescription(index, landmarks.description(i))
        if missing:
            node.SetNthControlPointPositionMissing(index)
    node.EndModify(was_modifying)


# --------------------------------------------------------------------------- segmentations
def _oriented_image_to_sitk(oriented) -> tuple[sitk.Image, np.ndarray]:
    """Voxels of an oriented image (no geometry set) and its first stored voxel's IJK-to-RAS matrix."""
    dims = oriented.GetDimensions()
    voxels = numpy_support.vtk_to_numpy(oriented.GetPointData().GetScalars()).reshape(
        dims[2], dims[1], dims[0]
    )
    image = sitk.GetImageFromArray(voxels.copy())
    image_to_world = vtk.vtkMatrix4x4()
    oriented.GetImageToWorldMatrix(image_to_world)
    # GetExtent may not start at 0: shift the origin to the first stored voxel.
    ijk_to_ras = _matrix_to_numpy(image_to_world)
    ijk_to_ras[:3, 3] += ijk_to_ras[:3, :3] @ np.array(oriented.GetExtent()[::2], dtype=np.float64)
    return image, ijk_to_ras


def segment_to_mask(segmentation_node, segment_id: str, reference_volume_node) -> sitk.Image:
    """Binary UInt8 mask of one segment on the voxel grid of ``reference_volume_node`` (nearest neighbour).

    ``segment_id`` may be a segment ID or a segment name.
    """
    what = f"segmentation '{segmentation_node.GetName() if segmentation_node else None}'"
    segmentation = segmentation_node.GetSegmentation() if segmentation_node is not None else None
    if segmentation is None:
        raise InputError(what, "is not a segmentation node")
    resolved = (
        segment_id
        if segmentation.GetSegment(segment_id)
        else segmentation.GetSegmentIdBySegmentName(segment_id)
    )
    if not resolved or segmentation.GetSegment(resolved) is None:
        names = [segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())]
        raise InputError(what, f"has no segment '{segment_id}' (it has {names})")
    segmentation_node.CreateBinaryLabelmapRepresentation()
    oriented = slicer.vtkOrientedImageData()
    segmentation_node.GetBinaryLabelmapRepresentation(resolved, oriented)
    if oriented.GetPointData().GetScalars() is None or min(oriented.GetDimensions()) < 1:
        raise InputError(what, f"segment '{segment_id}' is empty")
    voxels, ijk_to_ras = _oriented_image_to_sitk(oriented)
    origin, spacing, direction = _geometry_from_ijk_to_lps(
        _RAS_LPS @ _to_world(segmentation_node) @ ijk_to_ras
    )
    voxels.SetOrigin(tuple(origin))
    voxels.SetSpacing(tuple(spacing))
    voxels.SetDirection(tuple(direction.ravel()))
    mask = resample_mask(voxels, _geometry_image(reference_volume_node))
    if not np.any(sitk.GetArrayViewFromImage(mask)):
        raise InputError(what, f"segment '{segment_id}' has no foreground voxels inside the reference volume")
    return mask


def new_scene_with_logic():
    """A scene with an application logic and the markups logic registered (plain-Python use and tests).

    Inside the Slicer application use ``slicer.mrmlScene`` instead.
    """
    scene = slicer.vtkMRMLScene()
    application_logic = slicer.vtkSlicerApplicationLogic()
    application_logic.SetMRMLScene(scene)
    markups_logic = slicer.vtkSlicerMarkupsLogic()
    markups_logic.SetMRMLApplicationLogic(application_logic)
    markups_logic.SetMRMLScene(scene)
    application_logic.SetModuleLogic("Markups", markups_logic)
    scene._landmark_logics = (application_logic, markups_logic)  # keep them alive with the scene
    return scene
