"""FaceLandmarksLogic on real slicer-core nodes with a real YouTube-Faces photograph.

A stub network with known heatmap peaks stands in for a trained model (the bundled model is the face
engine's to test): what is checked is the Logic's part, i.e. that the photograph node and a markups
ROI give exactly the landmarks the headless pipeline gives on the same file and box, that a region
without a face is refused without touching the scene, and the background batch path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import slicer
import torch
import vtk
from FaceLandmarksSlicer.logic import FaceInputs, FaceLandmarksLogic
from LandmarkCoreLib.errors import InputError, ModelFileError
from LandmarkCoreLib.landmarks import LPS_RAS_FLIP
from LandmarkCoreLib.modelfile import ModelFile, save_model_file
from module_test_helpers import assert_refused_leaving_scene_unchanged

pytestmark = pytest.mark.realdata


class StubNet(torch.nn.Module):
    """Heatmaps peaking at fixed cells (or flat zero: 'no face')."""

    stride, cell_centre = 4, 1.5

    def __init__(self, cells: torch.Tensor | None) -> None:
        super().__init__()
        self.cells = cells

    def heatmaps(self, x: torch.Tensor) -> torch.Tensor:
        from FaceLandmarksLib.decoder import gaussian_heatmaps

        size = x.shape[-1] // 4
        if self.cells is None:
            return torch.zeros(x.shape[0], 68, size, size)
        return gaussian_heatmaps(self.cells.expand(x.shape[0], -1, -1), size, 1.0)


def stub_model(cells: torch.Tensor | None):
    from FaceLandmarksLib.pipeline import FaceModel

    return FaceModel(StubNet(cells), {"input_size": 64}, Path("stub"))


@pytest.fixture(scope="module")
def photograph(data_root):
    from LandmarkCoreLib.datasets import youtube_faces_samples
    from LandmarkCoreLib.images import read_image

    sample = youtube_faces_samples("test", data_root)[0]
    return sample, read_image(sample.image, "photograph", dimension=2)


def roi_around(scene, box):
    """A markups ROI covering the LPS box (x0, y0, x1, y1) of a 2D image."""
    x0, y0, x1, y1 = box
    roi = scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "face")
    roi.SetCenter(-(x0 + x1) / 2, -(y0 + y1) / 2, 0.0)
    roi.SetSize(x1 - x0, y1 - y0, 1.0)
    return roi


def test_detect_with_and_without_a_face_roi_equals_the_headless_pipeline(scene, photograph):
    """Also under a parent transform and off z = 0: the landmarks sit on the photograph's plane."""
    from FaceLandmarksLib.pipeline import detect_landmarks
    from LandmarkSlicerLib.mrml_bridge import image_to_volume_node

    _, image = photograph
    assert image.GetNumberOfComponentsPerPixel() == 3  # an RGB photograph -> a vector volume node
    cells = torch.linspace(2.0, 13.0, 68 * 2).reshape(1, 68, 2)
    model = stub_model(cells)
    volume = image_to_volume_node(image, scene, "face photo")
    logic = FaceLandmarksLogic(scene)
    width, height = image.GetSize()
    box = (0.2 * width, 0.1 * height, 0.8 * width, 0.9 * height)
    roi = roi_around(scene, box)
    np.testing.assert_allclose(logic.faceBox(roi), box, atol=1e-9)
    for region, headless_box in ((roi, box), (None, None)):
        inputs = FaceInputs(inputVolume=volume, faceRegion="ROI" if region else "whole image", faceRoi=region)
        node = logic.detect(inputs, model)
        assert node.GetNumberOfControlPoints() == 68 and node.GetNthControlPointLabel(67) == "67"
        expected = detect_landmarks(model, image, headless_box).landmarks.points
        ras = slicer.util.arrayFromMarkupsControlPoints(node)
        np.testing.assert_allclose(ras, np.c_[expected, np.zeros(68)] * LPS_RAS_FLIP, atol=1e-6)
    lps = ras * LPS_RAS_FLIP
    assert np.all((lps[:, 0] >= 0) & (lps[:, 0] <= width) & (lps[:, 1] >= 0) & (lps[:, 1] <= height))

    # The same photograph at z = 7 mm under a transform (translation + rotation about z).
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "moved")
    matrix = vtk.vtkMatrix4x4()
    matrix.DeepCopy((0.0, -1.0, 0.0, 10.0, 1.0, 0.0, 0.0, -4.0, 0.0, 0.0, 1.0, 3.0, 0, 0, 0, 1))
    transform.SetMatrixTransformToParent(matrix)
    volume.SetOrigin(*np.array(volume.GetOrigin()[:2]), 7.0)
    volume.SetAndObserveTransformNodeID(transform.GetID())
    moved = logic.detect(FaceInputs(inputVolume=volume), model)
    world = slicer.util.arrayFromMarkupsControlPoints(moved)  # the node is not transformed: world RAS
    local = np.c_[ras[:, :2], np.full(68, 7.0), np.ones(68)]
    on_plane = (slicer.util.arrayFromVTKMatrix(matrix) @ local.T).T[:, :3]
    np.testing.assert_allclose(world, on_plane, atol=1e-6)


def test_every_face_of_a_group_photograph_gets_its_own_point_list(scene, photograph):
    """The bundled model on the photograph beside a copy of itself: two point lists, each within 0.10
    NME of a different copy (the largest first in the given node, the other in a new node)."""
    from FaceLandmarksLib.pipeline import FaceModel
    from FaceLandmarksLib.scoring import normalised_errors
    from LandmarkSlicerLib.mrml_bridge import image_to_volume_node

    sample, image = photograph
    pixels = sitk.GetArrayFromImage(image)
    width = pixels.shape[1]
    group = sitk.GetImageFromArray(np.concatenate([pixels, pixels], axis=1), isVector=True)
    volume = image_to_volume_node(group, scene, "group")
    given = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "faces")
    nodes = FaceLandmarksLogic(scene).detectEvery(
        FaceInputs(inputVolume=volume, outputNode=given), FaceModel.load()
    )
    assert [n.GetName() for n in nodes] == ["faces", "faces (2)"]
    copies = [sample.points, sample.points + np.array([width, 0.0])]
    nearest = []
    for node in nodes:
        lps = slicer.util.arrayFromMarkupsControlPoints(node)[:, :2] * LPS_RAS_FLIP[:2]
        errors = [float(np.mean(normalised_errors(lps[None], copy[None]))) for copy in copies]
        assert min(errors) < 0.10, errors
        nearest.append(int(np.argmin(errors)))
    assert sorted(nearest) == [0, 1]


def test_no_face_and_bad_models_are_refused_without_touching_the_scene(scene, photograph, tmp_path):
    from LandmarkSlicerLib.mrml_bridge import image_to_volume_node

    _, image = photograph
    volume = image_to_volume_node(image, scene, "face photo")
    logic = FaceLandmarksLogic(scene)
    knee = tmp_path / "knee.pt"
    save_model_file(knee, ModelFile("knee-model", {}, {}))
    photo = FaceInputs(inputVolume=volume)
    batch = FaceInputs(batchInputFolder=tmp_path, batchOutputFolder=tmp_path / "out")
    cases = [
        (lambda: logic.detect(photo, stub_model(None)), InputError, "no face found"),
        (
            lambda: logic.loadModel(FaceInputs(modelSource="model file", modelPath=knee)),
            ModelFileError,
            "another",
        ),
        (
            lambda: logic.loadModel(FaceInputs(modelSource="model file", modelPath="")),
            InputError,
            "no file name",
        ),
        (lambda: logic.startBatchDetection(batch), InputError, "model"),
    ]
    for action, error, text in cases:
        assert_refused_leaving_scene_unchanged(scene, action, error, text)
    flagged = logic.detect(FaceInputs(inputVolume=volume, keepFlagged=True), stub_model(None))
    assert flagged.GetNumberOfControlPoints() == 68


def test_batch_detection_reports_the_photograph_without_a_face(photograph, tmp_path):
    """The bundled model on a real photograph and on a blank image: one written, one listed as failed."""
    import shutil

    import SimpleITK as sitk

    sample, _ = photograph
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(sample.image, folder / "face.jpg")
    blank = sitk.Image([96, 96], sitk.sitkVectorUInt8, 3) + 128  # uniform grey: no face in it
    sitk.WriteImage(blank, str(folder / "blank.png"))
    logic = FaceLandmarksLogic()
    logic.loadModel(FaceInputs())
    batch = FaceInputs(batchInputFolder=folder, batchOutputFolder=tmp_path / "out")
    summary = logic.startBatchDetection(batch).wait(timeout=300)
    assert [p.name for p in summary.written] == ["face.mrk.json"]
    assert list(summary.failed) == ["blank.png"]
    assert "blank.png': no face found" in summary.failed["blank.png"], summary.failed  # the CLI's reason
