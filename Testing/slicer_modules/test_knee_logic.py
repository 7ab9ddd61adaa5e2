"""KneeLandmarksLogic on real slicer-core nodes with a real ISBI 2015 cephalogram.

The model here is a small randomly initialised two-stage network with the cephalometric preset (the
trained bundled model is tested by the knee engine's own tests): what is checked is the Logic's part,
i.e. that a radiograph in the scene gives exactly the landmarks the headless pipeline gives on the
same file, in the right place, and that bad input is refused without touching the scene.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import SimpleITK as sitk
import slicer
from KneeLandmarksSlicer.logic import KneeInputs, KneeLandmarksLogic
from LandmarkCoreLib.errors import InputError, ModelFileError
from LandmarkCoreLib.landmarks import LPS_RAS_FLIP
from LandmarkCoreLib.modelfile import ModelFile, save_model_file
from module_test_helpers import assert_refused_leaving_scene_unchanged

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def random_model_path(tmp_path_factory):
    import torch
    from KneeLandmarksLib.model_file import MODEL_KIND
    from KneeLandmarksLib.presets import CEPHALOMETRIC
    from KneeLandmarksLib.training import TrainConfig, build_network, network_config

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
    from LandmarkSlicerLib.mrml_bridge import image_to_volume_node

    _, rgb = cephalogram
    grey = sitk.GetImageFromArray(sitk.GetArrayFromImage(rgb).mean(axis=-1).astype(np.float32))
    grey.SetSpacing(rgb.GetSpacing())
    logic = KneeLandmarksLogic(scene)
    model = logic.loadModel(KneeInputs(modelSource="model file", modelPath=random_model_path))
    headless_model = KneeModel.load(random_model_path)
    for name, image in (("151", rgb), ("151 grey", grey)):
        volume = image_to_volume_node(image, scene, name)
        notices = []
        node = logic.detect(KneeInputs(inputVolume=volume), model, notice=notices.append)
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
    again = logic.detect(KneeInputs(inputVolume=volume, outputNode=node), model)
    assert again is node and scene.GetNumberOfNodes() == count


def test_bad_input_is_refused_and_leaves_the_scene_unchanged(scene, random_model_path, tmp_path):
    from LandmarkSlicerLib.mrml_bridge import image_to_volume_node

    logic = KneeLandmarksLogic(scene)
    model_file = KneeInputs(modelSource="model file", modelPath=random_model_path)
    model = logic.loadModel(model_file)
    stack = image_to_volume_node(sitk.Image([64, 64, 12], sitk.sitkUInt8), scene, "CT stack")
    oneshot = tmp_path / "oneshot.pt"
    save_model_file(oneshot, ModelFile("oneshot-model", {}, {}))
    snapshot = KneeInputs(
        modelSource="KNEEL snapshot",
        modelPath=tmp_path / "imported.pt",
        roiSnapshotFolder=tmp_path / "no",
        landmarkSnapshotFolder=tmp_path,
    )
    missing = KneeInputs(batchInputFolder=tmp_path / "missing", batchOutputFolder=tmp_path / "out")
    cases = [
        (lambda: logic.detect(KneeInputs(inputVolume=stack), model), InputError, "CT stack"),
        (lambda: logic.loadModel(replace(model_file, modelPath=oneshot)), ModelFileError, "another module"),
        (lambda: logic.loadModel(snapshot), InputError, "ROI snapshot"),
        (lambda: logic.loadModel(replace(model_file, modelPath="")), InputError, "no file name"),
        (lambda: logic.startBatchDetection(missing), InputError, "does not exist"),
    ]
    for action, error, text in cases:
        assert_refused_leaving_scene_unchanged(scene, action, error, text)


def test_batch_detection_runs_the_cli_in_a_child_process(random_model_path, cephalogram, tmp_path):
    from LandmarkCoreLib.landmarks import read_landmarks

    _, image = cephalogram
    folder = tmp_path / "in"
    folder.mkdir()
    small = sitk.Shrink(image, [2, 2])  # RGB, 0.4 mm pixels, stored in the .nrrd
    for name in ("a", "b"):
        sitk.WriteImage(small, str(folder / f"{name}.nrrd"))
    (folder / "bad.png").write_text("not an image")  # one bad input: failed, with its reason, in both modes
    logic = KneeLandmarksLogic()
    logic.loadModel(KneeInputs(modelSource="model file", modelPath=random_model_path))
    results = {}
    for workers in (0, 2):  # one process; the advanced setting: a local Dask cluster of 2 workers
        out = tmp_path / f"out{workers}"
        batch = KneeInputs(batchInputFolder=folder, batchOutputFolder=out, batchWorkers=workers)
        task = logic.startBatchDetection(batch)
        assert ("--workers" in task.job.command) == (workers > 0)
        summary = task.wait(timeout=300)
        assert [p.name for p in summary.written] == ["a.mrk.json", "b.mrk.json"]
        assert list(summary.failed) == ["bad.png"] and "not a readable image" in summary.failed["bad.png"]
        assert f"- bad.png: image '{folder / 'bad.png'}': not a readable image" in str(summary)
        results[workers] = [read_landmarks(out / f"{name}.mrk.json").points for name in ("a", "b")]
        assert all(len(points) == 19 for points in results[workers])
        log = [json.loads(line) for line in (out / "batch_log.jsonl").read_text().splitlines()]
        assert sorted(r["status"] for r in log) == ["done", "done", "failed"]
        assert all(r["worker"].startswith("tcp://127.0.0.1:") == (workers > 0) for r in log), log
    np.testing.assert_allclose(results[2], results[0], atol=1e-3)  # mm
    with pytest.raises(InputError, match="batch workers"):
        logic.startBatchDetection(replace(batch, batchWorkers=-1))
