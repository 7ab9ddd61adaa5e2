"""Slicer-side helpers shared by the three modules' Logic and Widget classes.

Like :mod:`LandmarkCoreLib.mrml_bridge`, this file is only imported by the module files inside
Slicer (or by tests on the real ``slicer-core`` MRML); the headless Lib packages never import it.
``qt`` and ``PyTorchUtils`` are imported inside the functions that need them, so Logic classes stay
free of GUI code. One implementation of each Slicer-side idea: background CLI tasks, error tables,
the PyTorch dependency, and the Widget's progress bar / status / Cancel handling.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import slicer
import vtk

from . import jobs
from .errors import InputError, LandmarkError
from .evaluation import radial_errors, stack_by_labels
from .landmarks import LandmarkSet

#: The torch versions the Lib packages are tested with (pyproject.toml's range).
TORCH_REQUIREMENT = ">=2.1,<2.15"
#: How often the Widget polls a background job.
POLL_INTERVAL_MS = 200


# -- background CLI tasks ---------------------------------------------------------------------
def python_executable() -> str:
    """``PythonSlicer`` inside Slicer (the application's own environment), else this interpreter."""
    return shutil.which("PythonSlicer") or sys.executable


def work_folder(prefix: str) -> tempfile.TemporaryDirectory:
    """A private temporary folder for the files a CLI job reads and writes."""
    return tempfile.TemporaryDirectory(prefix=f"{prefix}-")


class BackgroundTask:
    """A CLI child process plus what turns its output files into scene nodes once it succeeded.

    ``finish`` runs only after a successful exit, so a failed or cancelled job leaves the scene as
    it was. The temporary ``folder`` (if any) is removed when the task is collected.
    """

    def __init__(
        self,
        job: jobs.Job,
        finish: Callable[[jobs.JobResult], Any],
        folder: tempfile.TemporaryDirectory | None = None,
    ) -> None:
        self.job = job
        self._finish = finish
        self._folder = folder

    @property
    def finished(self) -> bool:
        return self.job.finished

    def poll(self) -> list[jobs.ProgressEvent]:
        return self.job.poll()

    def cancel(self) -> None:
        self.job.cancel()

    def result(self) -> Any:
        """``finish``'s value; raises the job's ``Cancelled`` or ``JobError``. Cleans up either way."""
        try:
            return self._finish(self.job.result())
        finally:
            if self._folder is not None:
                self._folder.cleanup()
                self._folder = None

    def wait(self, timeout: float | None = None) -> Any:
        """Block until done (Python console, tests) and return :meth:`result`."""
        with contextlib.suppress(LandmarkError):  # result() raises it again after cleaning up
            self.job.wait(timeout)
        return self.result()


def start_cli_task(
    cli_module: str,
    subcommand: str,
    arguments: Sequence[object],
    packages: Sequence[object],
    finish: Callable[[jobs.JobResult], Any],
    folder: tempfile.TemporaryDirectory | None = None,
    name: str | None = None,
    success_codes: Sequence[int] = (0,),
) -> BackgroundTask:
    """Start ``python -m cli_module subcommand --progress-format jsonl arguments`` in the background.

    ``packages`` are the imported packages the child needs on its path (the Lib and LandmarkCoreLib).
    """
    command = jobs.cli_command(cli_module, subcommand, [str(a) for a in arguments], python_executable())
    job = jobs.Job(
        command,
        python_path=jobs.package_python_path(*packages),
        name=name or f"{cli_module.split('.')[0]} {subcommand}",
        success_codes=success_codes,
    )
    logging.info("Starting: %s", " ".join(command))
    return BackgroundTask(job.start(), finish, folder)


# -- scene helpers ----------------------------------------------------------------------------
def path_is_set(path: Any) -> bool:
    """A path parameter the user has filled in (the parameter node stores an unset path as '.')."""
    return str(path) not in ("", ".")


def scene_of(*nodes: object) -> Any:
    """The MRML scene the given nodes live in (the first node that has one)."""
    for node in nodes:
        if node is not None and node.GetScene() is not None:
            return node.GetScene()
    return slicer.mrmlScene


def require_node(node: object, what: str) -> None:
    """InputError naming ``what`` when no node was selected."""
    if node is None:
        raise InputError(what, "no node selected")


def radial_errors_by_label(detected: LandmarkSet, truth: LandmarkSet) -> tuple[list[str], np.ndarray]:
    """The ground truth's labels and the radial error of each (mm; NaN where not detected)."""
    if not set(truth.labels) & set(detected.labels):
        raise InputError("ground-truth landmarks", "no label in common with the detected landmarks")
    labels = list(truth.labels)
    errors = radial_errors(stack_by_labels([detected], labels), stack_by_labels([truth], labels))[0]
    return labels, errors


def fill_error_table(table_node: Any, labels: list[str], errors: np.ndarray) -> float:
    """Write one row per landmark (label, radial error in mm) and a 'mean' row; returns the mean."""
    label_column = vtk.vtkStringArray()
    label_column.SetName("Landmark")
    error_column = vtk.vtkDoubleArray()
    error_column.SetName("Radial error (mm)")
    valid = errors[np.isfinite(errors)]
    mean = float(valid.mean()) if valid.size else float("nan")
    for label, error in [*zip(labels, errors, strict=True), ("mean", mean)]:
        label_column.InsertNextValue(str(label))
        error_column.InsertNextValue(float(error))
    table = table_node.GetTable()
    with slicer.util.NodeModify(table_node):
        table.Initialize()
        table.AddColumn(label_column)
        table.AddColumn(error_column)
    table_node.Modified()
    return mean


def landmarks_into_node(landmarks: LandmarkSet, volume_node: Any, output_node: Any = None) -> Any:
    """Put ``landmarks`` (LPS) into ``output_node``, or a new markups node named after the volume."""
    from .mrml_bridge import landmarks_to_markups_node, set_markups_points

    if output_node is not None:
        set_markups_points(output_node, landmarks)
        return output_node
    scene = scene_of(volume_node)
    return landmarks_to_markups_node(
        landmarks, scene, scene.GenerateUniqueName(f"{volume_node.GetName()} landmarks")
    )


def image_files(folder: Any, suffixes: Sequence[str]) -> list[Path]:
    """The image files of ``folder`` (sorted); InputError if it is missing or holds none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"input folder '{folder}'", "does not exist")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(tuple(suffixes)))
    if not files:
        raise InputError(f"input folder '{folder}'", f"holds no image ({', '.join(suffixes)})")
    return files


def new_or_given_node(node: Any, scene: Any, class_name: str, name: str) -> Any:
    """``node`` itself, or a new node of ``class_name`` added to ``scene`` under a unique ``name``."""
    if node is not None:
        return node
    return scene.AddNewNodeByClass(class_name, scene.GenerateUniqueName(name))


def evaluate_markups(detected_node: Any, truth_node: Any, table_node: Any = None) -> tuple[Any, float]:
    """Radial error of each ground-truth landmark (matched by label) into a table node; the mean (mm)."""
    from .mrml_bridge import markups_node_to_landmarks

    require_node(detected_node, "detected landmarks")
    require_node(truth_node, "ground-truth landmarks")
    labels, errors = radial_errors_by_label(
        markups_node_to_landmarks(detected_node), markups_node_to_landmarks(truth_node)
    )
    table = new_or_given_node(
        table_node, scene_of(detected_node), "vtkMRMLTableNode", f"{detected_node.GetName()} errors"
    )
    return table, fill_error_table(table, labels, errors)


# -- dependencies inside Slicer (Widget side) -------------------------------------------------
def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def missing_packages(packages: dict[str, str]) -> list[str]:
    """pip names of the ``{import name: pip name}`` packages that cannot be imported."""
    import importlib.util

    return [pip_name for module, pip_name in packages.items() if importlib.util.find_spec(module) is None]


def ensure_torch(module_title: str) -> bool:
    """True when torch can be used; otherwise offer its installation through the PyTorch extension.

    Nothing is installed without the user's confirmation; declining explains what to do instead.
    """
    if torch_available():
        return True
    try:
        import PyTorchUtils
    except ImportError:
        slicer.util.errorDisplay(
            f"{module_title} needs PyTorch. Install the 'PyTorch' extension from the Extensions Manager, "
            "restart Slicer, and try again."
        )
        return False
    torch = PyTorchUtils.PyTorchUtilsLogic().installTorch(
        askConfirmation=True, torchVersionRequirement=TORCH_REQUIREMENT
    )
    if torch is None:
        slicer.util.errorDisplay(
            f"PyTorch was not installed, so {module_title} cannot train or detect. When you are ready, "
            "install it from the 'PyTorch Utils' module (or accept the prompt next time)."
        )
        return False
    return True


def ensure_dependencies(module_title: str, packages: dict[str, str]) -> bool:
    """torch (through the PyTorch extension) and the other ``{import name: pip name}`` packages the
    module's Lib needs beyond what Slicer ships; each install only after the user confirmed it."""
    if not ensure_torch(module_title):
        return False
    missing = missing_packages(packages)
    if not missing:
        return True
    if not slicer.util.confirmOkCancelDisplay(
        f"{module_title} needs the Python packages {', '.join(missing)}, which Slicer does not include. "
        "Install them now (downloads from PyPI)?"
    ):
        slicer.util.errorDisplay(
            f"{', '.join(missing)} not installed, so {module_title} cannot run. Install later from the "
            f"Python console: slicer.util.pip_install('{' '.join(missing)}')"
        )
        return False
    slicer.util.pip_install(" ".join(missing))
    return True


def device_notice(choice: str) -> str:
    """A visible notice when work will run on the CPU although a GPU may have been expected."""
    import torch

    if choice == "cpu":
        return "Running on the CPU (as selected)."
    if torch.cuda.is_available():
        return f"Running on the GPU ({torch.cuda.get_device_name(0)})."
    return "No CUDA GPU found: running on the CPU (slower)."


# -- the parameter-node life cycle of a Widget ------------------------------------------------
class ParameterNodeWidgetMixin:
    """Parameter-node and scene-close handling of Slicer's scripted-module template, once for all Widgets.

    The Widget derives from this class first (then ScriptedLoadableModuleWidget, VTKObservationMixin),
    sets ``self.logic`` and ``self.ui`` in ``setup``, calls :meth:`observeSceneClose` there, and defines
    ``_updateGui`` (called whenever the parameter node changes).
    """

    _parameterNode: Any = None
    _parameterNodeGuiTag: Any = None

    def observeSceneClose(self) -> None:
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

    def cleanup(self) -> None:
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateGui)

    def onSceneStartClose(self, caller, event) -> None:
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateGui)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateGui)
            self._updateGui()


# -- progress, status and Cancel in a Widget --------------------------------------------------
class TaskMonitor:
    """Drives a Widget's progress bar, status label and Cancel button for one background task.

    A ``qt.QTimer`` polls the task every :data:`POLL_INTERVAL_MS`, so the GUI never waits. When the
    task ends, ``on_success(value)`` runs, or the error is shown with ``slicer.util.errorDisplay``.
    """

    def __init__(
        self, progress_bar: Any, status_label: Any, cancel_button: Any, busy_widgets: Sequence[Any] = ()
    ) -> None:
        import qt

        self._bar = progress_bar
        self._status = status_label
        self._cancel_button = cancel_button
        self._busy_widgets = list(busy_widgets)
        self._task: BackgroundTask | None = None
        self._on_success: Callable[[Any], None] | None = None
        self._timer = qt.QTimer()
        self._timer.setInterval(POLL_INTERVAL_MS)
        self._timer.connect("timeout()", self._poll)
        self._cancel_button.connect("clicked(bool)", self.cancel)
        self._show_idle("Ready.")

    @property
    def busy(self) -> bool:
        return self._task is not None

    def status(self, text: str) -> None:
        self._status.text = text

    def run(self, task: BackgroundTask, description: str, on_success: Callable[[Any], None]) -> None:
        self._task, self._on_success = task, on_success
        self._bar.setRange(0, 0)  # busy until the first fraction arrives
        self._status.text = description
        self._cancel_button.enabled = True
        for widget in self._busy_widgets:
            widget.enabled = False
        self._timer.start()

    def cancel(self) -> None:
        if self._task is not None:
            self._status.text = "Cancelling (the last saved checkpoint is kept)..."
            self._task.cancel()

    def _poll(self) -> None:
        task = self._task
        if task is None:
            return
        for event in task.poll():
            if event.fraction is None:
                self._bar.setRange(0, 0)
            else:
                self._bar.setRange(0, 1000)
                self._bar.value = int(round(event.fraction * 1000))
            if event.message:
                self._status.text = event.message
        if task.finished:
            self._collect(task)

    def _collect(self, task: BackgroundTask) -> None:
        self._timer.stop()
        self._task = None
        try:
            value = task.result()
        except LandmarkError as error:
            self._show_idle(f"Stopped: {error}")
            if not task.job.cancel_requested:
                slicer.util.errorDisplay(str(error))
            return
        self._show_idle("Done.")
        if self._on_success is not None:
            self._on_success(value)

    def _show_idle(self, text: str) -> None:
        self._bar.setRange(0, 1000)
        self._bar.value = 0
        self._status.text = text
        self._cancel_button.enabled = False
        for widget in self._busy_widgets:
            widget.enabled = True
