"""KneeLandmarksLogic on real slicer-core nodes with a real ISBI 2015 cephalogram.

The model here is a small randomly initialised two-stage network with the cephalometric preset (the
trained bundled model is tested by the knee engine's own tests): what is checked is the Logic's part,
i.e. that a radiograph in the scene gives exactly the landmarks the headless pipeline gives on the
same file, in the right place, and that bad input is refused without touching the scene.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import SimpleITK as sitk
import slicer
from LandmarkCoreLib.errors import InputError, ModelFileError
from LandmarkCoreLib.landmarks import LPS_RAS_FLIP
from LandmarkCoreLib.modelfile import ModelFile, save_model_file
from module_test_helpers import scene_snapshot

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def random_model_path(tmp_path_factory):
    import torch
    from KneeLandmarksLib.presets import CEPHALOMETRIC
    from KneeLandmarksLib.training import MODEL_KIND, TrainConfig, build_network, network_config

    torch.manual_seed(0)
    preset = replace(CEPHALOMETRIC, width=4, depth=2)
    networks = {
        "stage1": network_config(preset, TrainConfig(stage=1), 1),
        "stage2": network_config(preset, TrainConfig(stage=2), len(preset.landmark_names)),
    }
    tensors = {name: build_network(config).state_dict() for name, config in networks.items()}
    config = {
        "preset": preset.to_config(),
        "networks": networks,
        "training": {},
        "coordinate_convention": "cell-centre",
    }
    path = tmp_path_factory.mktemp("knee") / "random.pt"
    save_model_file(path, ModelFile(MODEL_KIND, config, tensors))
    return path


@pytest.fixture(scope="module")
def cephalogram(data_root):
    from LandmarkCoreLib.datasets import isbi_cases
    from LandmarkCoreLib.images import read_image

    case = isbi_cases("test1", data_root)[0]
    image = read_image(case.image, "cephalogram", dimension=2)
    image = sitk.Shrink(image, [2, 2])  # half size keeps the test fast; the model resamples anyway
    image.SetSpacing((0.2, 0.2))  # the challenge's 0.1 mm pixels, halved (the JPEG carries none)
    return case, image


def test_detect_on_a_radiograph_node_equals_the_headless_pipeline(scene, random_model_path, cephalogram):
    """The ISBI JPEG is RGB: as a vector volume (grey conversion with a notice) and as a grey volume."""
    from KneeLandmarksLib.pipeline import KneeModel, detect_landmarks
    from LandmarkCoreLib.mrml_bridge import image_to_volume_node

    import KneeLandmarks

    _, rgb = cephalogram
    grey = sitk.GetImageFromArray(sitk.GetArrayFromImage(rgb).mean(axis=-1).astype(np.float32))
    grey.SetSpacing(rgb.GetSpacing())
    logic = KneeLandmarks.KneeLandmarksLogic()
    model = logic.loadModel("model file", random_model_path)
    headless_model = KneeModel.load(random_model_path)
    for name, image in (("151", rgb), ("151 grey", grey)):
        volume = image_to_volume_node(image, scene, name)
        notices = []
        node = logic.detect(model, volume, notice=notices.append)
        assert node.GetName() == f"{name} landmarks" and node.GetScene() is scene
        assert any("grey" in n for n in notices) == (name == "151")
        labels = [node.GetNthControlPointLabel(i) for i in range(node.GetNumberOfControlPoints())]
        assert labels == model.landmark_names and len(labels) == 19

        headless = detect_landmarks(headless_model, image)
        ras = slicer.util.arrayFromMarkupsControlPoints(node)
        np.testing.assert_allclose(ras, np.c_[headless.points, np.zeros(19)] * LPS_RAS_FLIP, atol=1e-6)
        width_mm, height_mm = 0.2 * np.array(image.GetSize())
        lps = ras * LPS_RAS_FLIP
        inside = (lps[:, 0] >= 0) & (lps[:, 0] <= width_mm) & (lps[:, 1] >= 0) & (lps[:, 1] <= height_mm)
        assert inside.all()

    count = scene.GetNumberOfNodes()  # an existing output node is reused, not duplicated
    assert logic.detect(model, volume, node) is node and scene.GetNumberOfNodes() == count


def test_bad_input_is_refused_and_leaves_the_scene_unchanged(scene, random_model_path, tmp_path):
    from LandmarkCoreLib.mrml_bridge import image_to_volume_node

    import KneeLandmarks

    logic = KneeLandmarks.KneeLandmarksLogic()
    model = logic.loadModel("model file", random_model_path)
    stack = image_to_volume_node(sitk.Image([64, 64, 12], sitk.sitkUInt8), scene, "CT stack")
    oneshot = tmp_path / "oneshot.pt"
    save_model_file(oneshot, ModelFile("oneshot-model", {}, {}))
    cases = [
        (lambda: logic.detect(model, stack), InputError, "CT stack"),
        (lambda: logic.loadModel("model file", oneshot), ModelFileError, "another module"),
        (
            lambda: logic.loadModel("KNEEL snapshot", tmp_path / "imported.pt", tmp_path / "no", tmp_path),
            InputError,
            "ROI snapshot",
        ),
        (lambda: logic.loadModel("model file", ""), InputError, "no file name"),
        (
            lambda: logic.startBatchDetection(tmp_path / "missing", tmp_path / "out"),
            InputError,
            "does not exist",
        ),
    ]
    for action, error, text in cases:
        before = scene_snapshot(scene)
        with pytest.raises(error, match=text):
            action()
        assert scene_snapshot(scene) == before


def test_batch_detection_runs_the_cli_in_a_child_process(random_model_path, cephalogram, tmp_path):
    from LandmarkCoreLib.landmarks import read_landmarks

    import KneeLandmarks

    _, image = cephalogram
    folder = tmp_path / "in"
    folder.mkdir()
    small = sitk.Shrink(image, [2, 2])  # RGB, 0.4 mm pixels, stored in the .nrrd
    for name in ("a", "b"):
        sitk.WriteImage(small, str(folder / f"{name}.nrrd"))
    logic = KneeLandmarks.KneeLandmarksLogic()
    logic.loadModel("model file", random_model_path)
    summary = logic.startBatchDetection(folder, tmp_path / "out").wait(timeout=300)
    assert "2 images" in summary
    for name in ("a", "b"):
        assert len(read_landmarks(tmp_path / "out" / f"{name}.mrk.json")) == 19
