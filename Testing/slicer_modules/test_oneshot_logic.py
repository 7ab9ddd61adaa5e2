"""OneShotLandmarksLogic on real slicer-core MRML nodes with real mouse skull micro-CT.

One reduced training through the Logic (module scope), then: the Logic's detection equals the
headless pipeline's on the same target file (same model), it lands near the ground truth, and
every typed user error leaves the scene unchanged.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import slicer
from LandmarkCoreLib.errors import InputError, ModelFileError
from LandmarkCoreLib.landmarks import LPS_RAS_FLIP, LandmarkSet
from LandmarkCoreLib.modelfile import ModelFile, save_model_file
from module_test_helpers import scene_snapshot
from OneShotLandmarksSlicer.logic import (
    WARNINGS_ATTRIBUTE,
    DetectionInputs,
    OneShotLandmarksLogic,
    TrainingInputs,
)
from OneShotLandmarksSlicer.selftest import TINY as SELF_TEST_TRAINING

pytestmark = pytest.mark.realdata

REFERENCE, VALIDATION, TARGET = "C57BL6_J_", "BALB_CBYJ_", "C3H_HEJ_"
#: The self-test's reduced training (far from the paper's) on the mouse skulls' 1 mm working grid.
TINY = replace(SELF_TEST_TRAINING, working_spacing_mm=1.0)
#: Measured 0.42 mm on this case with TINY training (full training targets <= 0.4 mm on all 18 targets).
TINY_ERROR_BOUND_MM = 1.0
#: Same model, same file, same seed: the Logic and the headless pipeline must agree (issue 4).
SAME_RESULT_MM = 1e-3


def _subject(data_root, name):
    from LandmarkCoreLib.datasets import mouse_skull_subjects

    return next(s for s in mouse_skull_subjects(data_root) if s.name == name)


@pytest.fixture(scope="module")
def case(data_root, tmp_path_factory):
    """Scene with reference/validation/target nodes and a model trained through the Logic."""
    from LandmarkSlicerLib.mrml_bridge import (
        image_to_volume_node,
        landmarks_to_markups_node,
        new_scene_with_logic,
    )

    previous = slicer.mrmlScene
    scene = slicer.mrmlScene = new_scene_with_logic()
    logic = OneShotLandmarksLogic(scene)
    nodes = {}
    for role, name in (("reference", REFERENCE), ("validation", VALIDATION), ("target", TARGET)):
        subject = _subject(data_root, name)
        nodes[role] = image_to_volume_node(subject.read_image(), scene, name)
        nodes[f"{role}_file"] = subject.image
        nodes[f"{role}_truth"] = subject.read_landmarks()
        if role != "target":  # the data's bone masks are this threshold recipe (checked below)
            nodes[f"{role}_seg"], nodes[f"{role}_segment"] = logic.createThresholdSoi(
                nodes[role], 40.0, f"{name} SOI"
            )
    nodes["landmarks"] = landmarks_to_markups_node(nodes["reference_truth"], scene, f"{REFERENCE} landmarks")
    model_path = tmp_path_factory.mktemp("oneshot") / "model.pt"
    inputs = TrainingInputs(
        nodes["reference"],
        nodes["landmarks"],
        nodes["reference_seg"],
        nodes["reference_segment"],
        nodes["validation"],
        nodes["validation_seg"],
        nodes["validation_segment"],
        settings=TINY,
        modelPath=model_path,
    )
    logic.train(inputs)
    yield scene, logic, nodes, inputs
    scene.Clear(1)
    slicer.mrmlScene = previous


def _ras(node):
    return slicer.util.arrayFromMarkupsControlPoints(node)


def test_logic_detection_equals_headless_pipeline(case):
    from LandmarkCoreLib.images import read_image
    from OneShotLandmarksLib.model import OneShotModel
    from OneShotLandmarksLib.pipeline import detect_landmarks

    scene, logic, nodes, inputs = case
    node = logic.detect(DetectionInputs(nodes["target"], device="cpu"))
    assert node.GetScene() is scene and node.GetName() == f"{TARGET} landmarks"
    labels = [node.GetNthControlPointLabel(i) for i in range(node.GetNumberOfControlPoints())]
    assert labels == nodes["reference_truth"].labels

    headless = detect_landmarks(
        OneShotModel.load(inputs.modelPath), read_image(nodes["target_file"]), device="cpu"
    )
    np.testing.assert_allclose(_ras(node), headless.landmarks.points * LPS_RAS_FLIP, atol=SAME_RESULT_MM)
    # a mouse skull is too symmetric for the image content to confirm its handedness: the node says so
    assert "handedness could not be confirmed" in node.GetAttribute(WARNINGS_ATTRIBUTE)
    assert node.GetAttribute(WARNINGS_ATTRIBUTE) == "; ".join(headless.warnings)

    truth = nodes["target_truth"].subset(labels).points * LPS_RAS_FLIP
    errors = np.linalg.norm(_ras(node) - truth, axis=1)
    print(f"tiny-training mean radial error on {TARGET}: {errors.mean():.3f} mm")
    assert errors.mean() < TINY_ERROR_BOUND_MM


def test_logic_gives_the_engine_exactly_the_files_contents(case, data_root):
    """Node -> SimpleITK conversions are exact: the Lib sees what the headless CLI reads from disk."""
    import SimpleITK as sitk
    from LandmarkCoreLib.segmentations import read_mask

    scene, logic, nodes, inputs = case
    images = logic.trainingImages(inputs)
    for name, image, mask in (
        (REFERENCE, images.reference, images.referenceSoi),
        (VALIDATION, images.validation, images.validationSoi),
    ):
        subject = _subject(data_root, name)
        expected = subject.read_image()
        assert image.GetSize() == expected.GetSize()
        np.testing.assert_allclose(image.GetOrigin(), expected.GetOrigin(), atol=1e-9)
        np.testing.assert_allclose(image.GetSpacing(), expected.GetSpacing(), atol=1e-9)
        np.testing.assert_allclose(image.GetDirection(), expected.GetDirection(), atol=1e-9)
        assert np.array_equal(sitk.GetArrayViewFromImage(image), sitk.GetArrayViewFromImage(expected))
        expected_mask = read_mask(subject.bone_mask, reference=expected)
        assert np.array_equal(sitk.GetArrayViewFromImage(mask), sitk.GetArrayViewFromImage(expected_mask))
    truth = nodes["reference_truth"]
    assert images.landmarks.labels == truth.labels
    np.testing.assert_allclose(images.landmarks.points, truth.points, atol=1e-6)


def test_model_section_shows_what_the_model_file_recorded_as_derived(case):
    """TINY gives the working spacing; margin and translation are derived from the skull's SOI, which
    is the mouse special case (scale ~1), and the file records them."""
    from OneShotLandmarksLib.model import OneShotModel

    scene, logic, nodes, inputs = case
    model = OneShotModel.load(inputs.modelPath)
    derived = logic.derivedSettings(model)
    assert "working_spacing_mm" not in derived
    assert {"margin_mm", "max_translation_mm", "registration_spacing_mm"} <= set(derived)
    assert derived["margin_mm"] == model.training.margin_mm
    assert derived["max_translation_mm"] == pytest.approx(3.0, rel=0.15)  # the mouse default
    text = logic.describeModel(model)
    assert "derived from the SOI" in text and f"margin_mm {derived['margin_mm']:g}" in text
    assert "GB" in text.splitlines()[-1]  # the cost estimated before training


def test_evaluation_writes_an_error_table(case):
    from LandmarkSlicerLib.mrml_bridge import landmarks_to_markups_node

    scene, logic, nodes, _ = case
    truth = nodes["target_truth"]
    shifted = LandmarkSet(truth.labels, truth.points + np.array([0.3, 0.4, 0.0]), name="shifted")
    detected = landmarks_to_markups_node(shifted, scene, "shifted")
    truth_node = landmarks_to_markups_node(truth, scene, "truth")
    table, mean = logic.evaluate(detected, truth_node)
    assert mean == pytest.approx(0.5)
    assert table.GetNumberOfRows() == len(truth) + 1
    assert table.GetCellText(len(truth), 0) == "mean"


def _expect_unchanged(scene, action, error_type, text):
    before = scene_snapshot(scene)
    with pytest.raises(error_type, match=text):
        action()
    assert scene_snapshot(scene) == before


def test_user_errors_are_typed_and_leave_the_scene_unchanged(case, tmp_path):
    scene, logic, nodes, inputs = case
    empty_markups = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "no points")
    empty_id = nodes["reference_seg"].GetSegmentation().AddEmptySegment("empty", "empty")
    foreign = tmp_path / "knee.pt"
    save_model_file(foreign, ModelFile("knee-model", {"labels": []}, {}))
    cases = [
        (replace(inputs, referenceLandmarks=empty_markups), InputError, "no control points"),
        (replace(inputs, referenceSegmentID=empty_id), InputError, "empty"),
        (replace(inputs, validationVolume=None), InputError, "validation volume"),
        (replace(inputs, settings=replace(TINY, margin_mm=-1.0)), InputError, "margin_mm"),
    ]
    for bad, error, text in cases:
        _expect_unchanged(scene, lambda bad=bad: logic.train(bad), error, text)
    _expect_unchanged(scene, lambda: logic.loadModel(foreign), ModelFileError, "another module")
    batch = DetectionInputs(inputFolder=tmp_path, outputFolder=tmp_path / "out")
    _expect_unchanged(
        scene, lambda: logic.startBatchDetection(batch, foreign), ModelFileError, "another module"
    )


def test_target_without_the_structure_is_refused(case):
    import SimpleITK as sitk
    from LandmarkSlicerLib.mrml_bridge import image_to_volume_node
    from OneShotLandmarksLib.pipeline import PoseNotFoundError

    scene, logic, nodes, _ = case
    blank = sitk.Image([60, 60, 60], sitk.sitkUInt8)  # nothing of the structure of interest in it
    blank.SetSpacing((0.2, 0.2, 0.2))
    empty_target = image_to_volume_node(blank, scene, "no skull here")
    # The tiny-trained net finds "something" in the blank volume; no pose of it matches the reference.
    detect = lambda: logic.detect(DetectionInputs(empty_target, device="cpu"))  # noqa: E731
    _expect_unchanged(scene, detect, PoseNotFoundError, "no pose of the target matches the reference")


def test_background_training_runs_with_every_changed_advanced_setting(case, tmp_path):
    """The GUI path: every setting reaches the CLI child, whose model file records what it ran with."""
    from OneShotLandmarksLib.model import OneShotModel

    scene, logic, nodes, inputs = case
    changed = replace(
        TINY,
        max_epochs=1,
        margin_mm=1.5,
        max_rotation_deg=90.0,
        max_translation_mm=2.0,
        batch_size=16,
        learning_rate=5e-4,
        lr_decay_per_epoch=0.9,
    )
    background = replace(inputs, settings=changed, modelPath=tmp_path / "background.pt")
    task = logic.startTraining(background)
    model = task.wait(timeout=600)
    assert model is logic.model and model.landmarks.labels == nodes["reference_truth"].labels
    assert OneShotModel.load(tmp_path / "background.pt").training == changed
    events = task.poll()  # drained by nobody: the progress lines arrived
    assert events and all(e.fraction is None or 0 <= e.fraction <= 1 for e in events)


def test_background_detection_through_the_cli(case):
    # TINY models are fragile (another TINY training may miss the skull), so detect with the model
    # whose in-process detection was checked above.
    scene, logic, nodes, inputs = case
    logic.loadModel(inputs.modelPath)
    count = lambda: scene.GetNumberOfNodesByClass("vtkMRMLMarkupsFiducialNode")  # noqa: E731
    before = count()
    node = logic.startDetection(DetectionInputs(nodes["target"], device="cpu")).wait(timeout=600)
    assert count() == before + 1 and node.GetName().startswith(TARGET)
    truth = nodes["target_truth"].subset(nodes["reference_truth"].labels).points * LPS_RAS_FLIP
    assert np.linalg.norm(_ras(node) - truth, axis=1).mean() < TINY_ERROR_BOUND_MM


def test_batch_detection_lists_a_broken_volume_with_the_clis_reason(case, tmp_path):
    """Detect in folder: the target beside a truncated copy of it; the summary comes from the batch log."""
    from LandmarkCoreLib.landmarks import read_landmarks

    scene, logic, nodes, inputs = case
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    (folder / f"{TARGET}.nii.gz").symlink_to(nodes["target_file"])
    (folder / "broken.nii.gz").write_bytes(nodes["target_file"].read_bytes()[:4096])
    batch = DetectionInputs(inputFolder=folder, outputFolder=out, device="cpu")
    summary = logic.startBatchDetection(batch, inputs.modelPath).wait(timeout=600)
    assert summary.written == [out / f"{TARGET}.mrk.json"]
    assert list(summary.failed) == ["broken.nii.gz"]
    assert "compressed file is truncated" in summary.failed["broken.nii.gz"]
    detected = read_landmarks(summary.written[0])
    truth = nodes["target_truth"].subset(detected.labels)
    assert np.linalg.norm(detected.points - truth.points, axis=1).mean() < TINY_ERROR_BOUND_MM


LAUNCHER = """\
import signal, subprocess, sys
from pathlib import Path
# Like PythonSlicer (a CTKAppLauncher): starts the real interpreter as its child, shares its pipes,
# forwards no signal and returns the child's exit status.
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([{python!r}, *sys.argv[1:]])
Path({pid_file!r}).write_text(str(child.pid))
sys.exit(child.wait())
"""


def test_cancel_reaches_the_cli_behind_a_launcher_and_keeps_its_checkpoint(case, tmp_path, monkeypatch):
    import os
    import sys
    import time

    from LandmarkCoreLib.commandline import EXIT_INTERRUPTED
    from LandmarkCoreLib.errors import Cancelled
    from LandmarkCoreLib.modelfile import load_model_file
    from LandmarkSlicerLib import tasks

    scene, logic, nodes, inputs = case
    pid_file = tmp_path / "child.pid"
    launcher = tmp_path / "PythonSlicer"
    launcher.write_text(
        f"#!{sys.executable}\n" + LAUNCHER.format(python=sys.executable, pid_file=str(pid_file))
    )
    launcher.chmod(0o755)
    monkeypatch.setattr(tasks, "python_executable", lambda: str(launcher))
    model_path = tmp_path / "long.pt"
    long_training = replace(
        inputs, settings=replace(TINY, max_epochs=500, patience=500), modelPath=model_path
    )
    task = logic.startTraining(long_training)
    deadline = time.monotonic() + 600
    while not list(tmp_path.glob("long.pt*checkpoint*")):  # the first epoch's checkpoint
        assert not task.finished, task.job.result()
        assert time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.2)
    child = int(pid_file.read_text())
    task.cancel()
    with pytest.raises(Cancelled):
        task.wait(timeout=300)
    # The CLI's own interrupt status, passed on by the launcher: the interrupt reached the real
    # process (the launcher ignores signals; a forced stop would end it with -SIGKILL).
    assert task.job._process.returncode == EXIT_INTERRUPTED
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)
    assert not model_path.exists()
    (checkpoint,) = tmp_path.glob("long.pt*checkpoint*")
    stored = load_model_file(checkpoint)
    assert stored.kind.endswith("checkpoint") and stored.tensors
