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
import slicer
import torch
from LandmarkCoreLib.errors import InputError, ModelFileError
from LandmarkCoreLib.landmarks import LPS_RAS_FLIP
from LandmarkCoreLib.modelfile import ModelFile, save_model_file
from module_test_helpers import scene_snapshot

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
    from FaceLandmarksLib.pipeline import detect_landmarks
    from LandmarkCoreLib.mrml_bridge import image_to_volume_node

    import FaceLandmarks

    _, image = photograph
    assert image.GetNumberOfComponentsPerPixel() == 3  # an RGB photograph -> a vector volume node
    cells = torch.linspace(2.0, 13.0, 68 * 2).reshape(1, 68, 2)
    model = stub_model(cells)
    volume = image_to_volume_node(image, scene, "face photo")
    logic = FaceLandmarks.FaceLandmarksLogic()
    width, height = image.GetSize()
    box = (0.2 * width, 0.1 * height, 0.8 * width, 0.9 * height)
    roi = roi_around(scene, box)
    np.testing.assert_allclose(logic.faceBox(roi), box, atol=1e-9)
    for region, headless_box in ((roi, box), (None, None)):
        node = logic.detect(model, volume, region)
        assert node.GetNumberOfControlPoints() == 68 and node.GetNthControlPointLabel(67) == "67"
        expected = detect_landmarks(model, image, headless_box).landmarks.points
        ras = slicer.util.arrayFromMarkupsControlPoints(node)
        np.testing.assert_allclose(ras, np.c_[expected, np.zeros(68)] * LPS_RAS_FLIP, atol=1e-6)
    lps = ras * LPS_RAS_FLIP
    assert np.all((lps[:, 0] >= 0) & (lps[:, 0] <= width) & (lps[:, 1] >= 0) & (lps[:, 1] <= height))


def test_no_face_and_bad_models_are_refused_without_touching_the_scene(scene, photograph, tmp_path):
    from LandmarkCoreLib.mrml_bridge import image_to_volume_node

    import FaceLandmarks

    _, image = photograph
    volume = image_to_volume_node(image, scene, "face photo")
    logic = FaceLandmarks.FaceLandmarksLogic()
    knee = tmp_path / "knee.pt"
    save_model_file(knee, ModelFile("knee-model", {}, {}))
    cases = [
        (lambda: logic.detect(stub_model(None), volume), InputError, "no face found"),
        (lambda: logic.loadModel("model file", knee), ModelFileError, "another module"),
        (lambda: logic.loadModel("model file", ""), InputError, "no file name"),
        (lambda: logic.startBatchDetection(tmp_path, tmp_path / "out"), InputError, "model"),
    ]
    for action, error, text in cases:
        before = scene_snapshot(scene)
        with pytest.raises(error, match=text):
            action()
        assert scene_snapshot(scene) == before
    flagged = logic.detect(stub_model(None), volume, keepFlagged=True)
    assert flagged.GetNumberOfControlPoints() == 68


def test_batch_detection_reports_photographs_without_a_face(photograph, tmp_path):
    import shutil

    from FaceLandmarksLib.methods import HeatmapNet
    from FaceLandmarksLib.training import MODEL_KIND

    import FaceLandmarks

    sample, _ = photograph
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a", "b"):
        shutil.copy(sample.image, folder / f"{name}.jpg")
    torch.manual_seed(0)
    config = {
        "architecture": {
            "type": "resnet-simplebaselines",
            "n_points": 68,
            "depth": 18,
            "width": 8,
            "decoder_channels": 8,
        },
        "input_size": 32,
    }
    model_path = tmp_path / "random.pt"
    weights = {"state_dict": HeatmapNet(18, 8, 68, 8).state_dict()}
    save_model_file(model_path, ModelFile(MODEL_KIND, config, weights))
    logic = FaceLandmarks.FaceLandmarksLogic()
    logic.loadModel("model file", model_path)
    summary = logic.startBatchDetection(folder, tmp_path / "out").wait(timeout=300)
    written = sorted((tmp_path / "out").glob("*.mrk.json"))
    assert summary.startswith(f"{len(written)} of 2 photographs")
    assert ("without a face" in summary) == (len(written) < 2)
