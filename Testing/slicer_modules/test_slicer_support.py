"""The Widget-side helpers: progress/status/Cancel driving, the PyTorch dependency, error tables.

Qt cannot run here, so the timer is not started: the test calls the poll the timer would call, with
plain objects standing in for the progress bar, label and buttons, and a real child process.
"""

from __future__ import annotations

import sys
import textwrap
import time
import types

import numpy as np
import pytest
import slicer
from LandmarkCoreLib import jobs
from LandmarkCoreLib.batch import plan_batch, run_batch
from LandmarkCoreLib.errors import InputError
from LandmarkCoreLib.landmarks import LandmarkSet
from LandmarkSlicerLib import gui, tasks
from LandmarkSlicerLib import scene as scene_helpers

CLI = textwrap.dedent(
    """
    import json, sys, time
    mode = sys.argv[1]
    for i in range(1, 4):
        print(json.dumps({"progress": i / 4, "message": f"step {i}"}), flush=True)
        time.sleep(0.05)
    if mode == "fail":
        print("error: target 'x.nrrd': structure of interest not found", file=sys.stderr)
        sys.exit(1)
    if mode == "slow":
        time.sleep(60)
    """
)


class Bar:
    def __init__(self) -> None:
        self.value, self.range = 0, (0, 1000)

    def setRange(self, low, high) -> None:
        self.range = (low, high)


class Widget:
    def __init__(self) -> None:
        self.text, self.enabled, self.connections = "", True, []

    def connect(self, signal, slot) -> None:
        self.connections.append((signal, slot))


@pytest.fixture
def monitor_parts(tmp_path, monkeypatch):
    errors = []
    monkeypatch.setattr(slicer.util, "errorDisplay", lambda text, *a, **k: errors.append(text))
    script = tmp_path / "cli.py"
    script.write_text(CLI)
    bar, status, cancel, train = Bar(), Widget(), Widget(), Widget()
    monitor = gui.TaskMonitor(bar, status, cancel, busy_widgets=[train])

    def task(mode, finish=lambda result: "finished", success_codes=(0,)):
        command = [sys.executable, str(script), mode]
        job = jobs.Job(command, name="fake job", success_codes=success_codes).start()
        return tasks.BackgroundTask(job, finish)

    return monitor, task, bar, status, cancel, train, errors


def drive(monitor, seconds=30.0):
    deadline = time.monotonic() + seconds
    while monitor.busy:
        assert time.monotonic() < deadline, "task did not end"
        monitor._poll()
        time.sleep(0.02)


def test_success_updates_progress_then_calls_back(monitor_parts):
    monitor, task, bar, status, cancel, train, errors = monitor_parts
    assert cancel.enabled is False and status.text == "Ready."
    results = []
    monitor.run(task("ok"), "Training...", results.append)
    assert monitor.busy and train.enabled is False and cancel.enabled is True
    drive(monitor)
    assert results == ["finished"] and errors == []
    assert train.enabled is True and cancel.enabled is False and status.text == "Done."


def test_failure_shows_the_tools_message_once(monitor_parts):
    monitor, task, bar, status, cancel, train, errors = monitor_parts
    results = []
    monitor.run(task("fail"), "Detecting...", results.append)
    drive(monitor)
    assert results == []
    assert len(errors) == 1 and "structure of interest not found" in errors[0]
    assert status.text.startswith("Stopped:") and train.enabled is True


def test_cancel_stops_without_an_error_popup(monitor_parts):
    monitor, task, bar, status, cancel, train, errors = monitor_parts
    results = []
    monitor.run(task("slow"), "Training...", results.append)
    deadline = time.monotonic() + 30.0  # a loaded machine may take seconds to start the child
    while not status.text.startswith("step") and time.monotonic() < deadline:
        monitor._poll()
        time.sleep(0.02)
    assert bar.range == (0, 1000) and bar.value > 0 and status.text.startswith("step")
    monitor.cancel()
    drive(monitor)
    assert results == [] and errors == [] and "cancelled" in status.text


def test_torch_missing_and_no_pytorch_extension(monkeypatch):
    shown = []
    monkeypatch.setattr(slicer.util, "errorDisplay", lambda text, *a, **k: shown.append(text))
    monkeypatch.setattr(gui, "torch_available", lambda: False)
    monkeypatch.setitem(sys.modules, "PyTorchUtils", None)  # import fails
    assert gui.ensure_torch("One-Shot Landmarks") is False
    assert "Install the 'PyTorch' extension" in shown[0]


def test_torch_install_declined_says_what_to_do(monkeypatch):
    shown, asked = [], []

    class Logic:
        def installTorch(self, askConfirmation, torchVersionRequirement=None):
            asked.append((askConfirmation, torchVersionRequirement))
            return None  # the user pressed Cancel

    monkeypatch.setattr(slicer.util, "errorDisplay", lambda text, *a, **k: shown.append(text))
    monkeypatch.setattr(gui, "torch_available", lambda: False)
    monkeypatch.setitem(sys.modules, "PyTorchUtils", types.SimpleNamespace(PyTorchUtilsLogic=Logic))
    assert gui.ensure_torch("Knee Landmarks") is False
    assert asked == [(True, gui.TORCH_REQUIREMENT)]
    assert "PyTorch was not installed" in shown[0] and "PyTorch Utils" in shown[0]


def test_torch_present_needs_nothing():
    assert gui.ensure_torch("Face Landmarks") is True
    assert "CPU" in gui.device_notice("cpu")


def test_error_table_rows_and_missing_detections(scene):
    truth = LandmarkSet(["a", "b", "c"], np.zeros((3, 3)))
    detected = LandmarkSet(["b", "a"], np.array([[0.0, 3.0, 4.0], [1.0, 0.0, 0.0]]))
    labels, errors = scene_helpers.radial_errors_by_label(detected, truth)
    assert labels == ["a", "b", "c"]
    np.testing.assert_allclose(errors[:2], [1.0, 5.0])
    assert np.isnan(errors[2])
    table = scene.AddNewNodeByClass("vtkMRMLTableNode", "errors")
    assert scene_helpers.fill_error_table(table, labels, errors) == pytest.approx(3.0)
    assert [table.GetCellText(r, 0) for r in range(4)] == ["a", "b", "c", "mean"]
    with pytest.raises(Exception, match="no label in common"):
        scene_helpers.radial_errors_by_label(LandmarkSet(["z"], np.zeros((1, 3))), truth)


@pytest.mark.parametrize("accept", [True, False])
def test_other_packages_are_installed_only_after_confirmation(monkeypatch, accept):
    shown, installed = [], []
    monkeypatch.setattr(slicer.util, "errorDisplay", lambda text, *a, **k: shown.append(text))
    monkeypatch.setattr(slicer.util, "confirmOkCancelDisplay", lambda text, *a, **k: accept)
    monkeypatch.setattr(slicer.util, "pip_install", installed.append, raising=False)
    packages = {"json": "json-is-stdlib", "no_such_module_xyz": "no-such-package-xyz"}
    assert gui.missing_packages(packages) == ["no-such-package-xyz"]
    assert gui.ensure_dependencies("One-Shot Landmarks", packages) is accept
    assert installed == (["no-such-package-xyz"] if accept else [])
    assert shown == [] if accept else "pip_install('no-such-package-xyz')" in shown[0]


def test_parameter_node_mixin_connects_and_releases_the_gui():
    import vtk
    from slicer.util import VTKObservationMixin

    calls = []

    class ParameterNode(vtk.vtkObject):
        def connectGui(self, ui):
            calls.append(("connect", ui))
            return "gui tag"

        def disconnectGui(self, tag):
            calls.append(("disconnect", tag))

    node = ParameterNode()

    class Widget(gui.ParameterNodeWidgetMixin, VTKObservationMixin):
        def __init__(self) -> None:
            VTKObservationMixin.__init__(self)
            self.ui, self.updates = "ui", 0
            self.logic = types.SimpleNamespace(getParameterNode=lambda: node)

        def _updateGui(self, caller=None, event=None) -> None:
            self.updates += 1

    widget = Widget()
    widget.enter()
    assert calls == [("connect", "ui")] and widget.updates == 1
    node.Modified()
    assert widget.updates == 2
    widget.exit()
    assert calls[-1] == ("disconnect", "gui tag")
    node.Modified()
    assert widget.updates == 2, "the GUI still follows the parameter node after exit()"


def test_any_exception_resets_the_gui_and_the_buttons_follow_their_conditions(monitor_parts, monkeypatch):
    monitor, task, bar, status, cancel, train, errors = monitor_parts
    idle_calls = []
    monitor._on_idle = lambda: idle_calls.append(train.enabled)

    def broken_finish(result):
        raise RuntimeError("output file unreadable")

    monitor.run(task("ok", broken_finish), "Detecting...", lambda value: None)
    drive(monitor)
    assert not monitor.busy and train.enabled is True and cancel.enabled is False
    assert status.text == "Stopped: output file unreadable" and errors == ["output file unreadable"]
    assert idle_calls == [True]  # the Widget re-evaluated its buttons once the job ended


class HalfBroken:
    """A batch Detector: writes ``stem.mrk.json`` for a .png (with a warning for ``w.png``), refuses a
    .nii.gz as unreadable."""

    def output_names(self, stem: str) -> list[str]:
        return [f"{stem}.mrk.json"]

    def __call__(self, source, stem, output) -> dict:
        if source.name.endswith(".nii.gz"):
            raise InputError(f"image '{source.name}'", "not a readable image")
        (output / f"{stem}.mrk.json").write_text("{}")
        return {"warnings": ["handedness not confirmed", "pose weak"]} if stem == "w" else {}


def _inputs(folder, *names):
    folder.mkdir()
    for name in names:
        (folder / name).write_text("x")
    return [folder / name for name in names]


def test_a_batch_with_failures_shows_its_summary_not_an_error(monitor_parts, monkeypatch, tmp_path):
    monitor, task, bar, status, cancel, train, errors = monitor_parts
    warnings, results = [], []
    monkeypatch.setattr(slicer.util, "warningDisplay", lambda text, *a, **k: warnings.append(text))
    started = time.time()
    items, _ = plan_batch(_inputs(tmp_path / "in", "a.png", "b.nii.gz", "w.png"), (".png", ".nii.gz"))
    out = tmp_path / "out"

    def finish(result):
        run_batch(HalfBroken(), items, out, report=lambda table: None)  # the batch log the CLI writes
        return tasks.batch_summary(out, result, started)

    monitor.run(task("fail", finish, tasks.BATCH_EXIT_CODES), "Batch detection...", results.append)
    drive(monitor)
    assert errors == [] and len(results) == 1
    summary = results[0]
    assert summary.written == [out / "a.mrk.json", out / "w.mrk.json"]
    assert summary.failed == {"b.nii.gz": "image 'b.nii.gz': not a readable image"}
    assert summary.warnings == {"w.png": "handedness not confirmed; pose weak"}
    assert warnings == [str(summary)] and "- b.nii.gz: image 'b.nii.gz': not a readable image" in warnings[0]
    assert "to be checked:\n- w.png: handedness not confirmed; pose weak\nFailed:" in warnings[0]


def test_the_summary_names_inputs_by_their_folders_where_their_names_are_the_same(tmp_path):
    items, _ = plan_batch(
        [*_inputs(tmp_path / "a", "skull.nii.gz"), *_inputs(tmp_path / "b", "skull.nii.gz")], (".nii.gz",)
    )
    missing = str(tmp_path / "c" / "missing.png")
    started = time.time()
    run_batch(HalfBroken(), items, tmp_path / "out", {missing: "file does not exist"}, report=print)
    summary = tasks.batch_summary(tmp_path / "out", jobs.JobResult(returncode=1), started)
    assert summary.written == []
    assert list(summary.failed) == ["a/skull.nii.gz", "b/skull.nii.gz", "c/missing.png"]
    assert summary.failed["c/missing.png"] == f"'{missing}': file does not exist"


def test_a_batch_that_wrote_no_log_is_an_error(tmp_path):
    result = jobs.JobResult(returncode=1, stderr="error: model file 'm.pt': does not exist")
    with pytest.raises(jobs.JobError, match="does not exist"):
        tasks.batch_summary(tmp_path, result, time.time())
    items, _ = plan_batch(_inputs(tmp_path / "in", "a.png"), (".png",))
    run_batch(HalfBroken(), items, tmp_path / "out", report=print)
    with pytest.raises(jobs.JobError):  # an older batch's log does not count for a new batch
        tasks.batch_summary(tmp_path / "out", result, time.time() + 60)


def test_widget_cleanup_cancels_a_running_job(monitor_parts):
    monitor, task, bar, status, cancel, train, errors = monitor_parts
    running = task("slow")
    monitor.run(running, "Training...", lambda value: None)

    class ClosingWidget(gui.ParameterNodeWidgetMixin):
        def removeObservers(self) -> None:
            pass

    widget = ClosingWidget()
    widget._monitor = monitor
    widget.cleanup()
    assert running.job.cancel_requested
    drive(monitor)
    assert errors == [] and "cancelled" in status.text


def test_a_numbered_image_among_its_siblings_loads_as_one_image(scene, tmp_path):
    import SimpleITK as sitk

    for index in range(1, 4):
        sitk.WriteImage(sitk.Image([40, 30], sitk.sitkUInt8) + index, str(tmp_path / f"{index:03d}.png"))
    node = scene_helpers.load_image_node(tmp_path / "002.png", scene)
    assert node.GetImageData().GetDimensions() == (40, 30, 1)
    assert slicer.util.arrayFromVolume(node).max() == 2 and node.GetName() == "002"
