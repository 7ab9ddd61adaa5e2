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
from LandmarkCoreLib import jobs, slicer_support
from LandmarkCoreLib.landmarks import LandmarkSet

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
    monitor = slicer_support.TaskMonitor(bar, status, cancel, busy_widgets=[train])

    def task(mode, finish=lambda result: "finished"):
        job = jobs.Job([sys.executable, str(script), mode], name="fake job").start()
        return slicer_support.BackgroundTask(job, finish)

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
    monkeypatch.setattr(slicer_support, "torch_available", lambda: False)
    monkeypatch.setitem(sys.modules, "PyTorchUtils", None)  # import fails
    assert slicer_support.ensure_torch("One-Shot Landmarks") is False
    assert "Install the 'PyTorch' extension" in shown[0]


def test_torch_install_declined_says_what_to_do(monkeypatch):
    shown, asked = [], []

    class Logic:
        def installTorch(self, askConfirmation, torchVersionRequirement=None):
            asked.append((askConfirmation, torchVersionRequirement))
            return None  # the user pressed Cancel

    monkeypatch.setattr(slicer.util, "errorDisplay", lambda text, *a, **k: shown.append(text))
    monkeypatch.setattr(slicer_support, "torch_available", lambda: False)
    monkeypatch.setitem(sys.modules, "PyTorchUtils", types.SimpleNamespace(PyTorchUtilsLogic=Logic))
    assert slicer_support.ensure_torch("Knee Landmarks") is False
    assert asked == [(True, slicer_support.TORCH_REQUIREMENT)]
    assert "PyTorch was not installed" in shown[0] and "PyTorch Utils" in shown[0]


def test_torch_present_needs_nothing():
    assert slicer_support.ensure_torch("Face Landmarks") is True
    assert "CPU" in slicer_support.device_notice("cpu")


def test_error_table_rows_and_missing_detections(scene):
    truth = LandmarkSet(["a", "b", "c"], np.zeros((3, 3)))
    detected = LandmarkSet(["b", "a"], np.array([[0.0, 3.0, 4.0], [1.0, 0.0, 0.0]]))
    labels, errors = slicer_support.radial_errors_by_label(detected, truth)
    assert labels == ["a", "b", "c"]
    np.testing.assert_allclose(errors[:2], [1.0, 5.0])
    assert np.isnan(errors[2])
    table = scene.AddNewNodeByClass("vtkMRMLTableNode", "errors")
    assert slicer_support.fill_error_table(table, labels, errors) == pytest.approx(3.0)
    assert [table.GetCellText(r, 0) for r in range(4)] == ["a", "b", "c", "mean"]
    with pytest.raises(Exception, match="no label in common"):
        slicer_support.radial_errors_by_label(LandmarkSet(["z"], np.zeros((1, 3))), truth)


@pytest.mark.parametrize("accept", [True, False])
def test_other_packages_are_installed_only_after_confirmation(monkeypatch, accept):
    shown, installed = [], []
    monkeypatch.setattr(slicer.util, "errorDisplay", lambda text, *a, **k: shown.append(text))
    monkeypatch.setattr(slicer.util, "confirmOkCancelDisplay", lambda text, *a, **k: accept)
    monkeypatch.setattr(slicer.util, "pip_install", installed.append, raising=False)
    packages = {"json": "json-is-stdlib", "no_such_module_xyz": "no-such-package-xyz"}
    assert slicer_support.missing_packages(packages) == ["no-such-package-xyz"]
    assert slicer_support.ensure_dependencies("One-Shot Landmarks", packages) is accept
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

    class Widget(slicer_support.ParameterNodeWidgetMixin, VTKObservationMixin):
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
