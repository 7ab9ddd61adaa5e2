"""Widget-side helpers shared by the three modules: progress/status/Cancel, the parameter-node life
cycle, and the PyTorch (and other package) dependencies. ``qt`` and ``PyTorchUtils`` are imported
inside the functions that need them, so importing this file needs no GUI.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Sequence
from typing import Any

import slicer
import vtk
from LandmarkCoreLib.errors import LandmarkError

from .tasks import BackgroundTask, BatchSummary

#: The torch versions the Lib packages are tested with (pyproject.toml's range).
TORCH_REQUIREMENT = ">=2.1,<2.15"
#: How often the Widget polls a background job.
POLL_INTERVAL_MS = 200


# -- dependencies inside Slicer ---------------------------------------------------------------
def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def missing_packages(packages: dict[str, str]) -> list[str]:
    """pip names of the ``{import name: pip name}`` packages that cannot be imported."""
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


def batch_packages(packages: dict[str, str], workers: int) -> dict[str, str]:
    """``packages`` plus dask.distributed when a batch runs on ``workers`` > 0 worker processes."""
    from .tasks import DASK_PACKAGES

    return {**packages, **DASK_PACKAGES} if workers else dict(packages)


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
    sets ``self.logic``, ``self.ui`` and ``self._monitor`` in ``setup``, calls :meth:`observeSceneClose`
    there, defines ``wrapParameterNode`` and ``_updateGui`` (called whenever the parameter node changes).
    """

    _parameterNode: Any = None
    _parameterNodeGuiTag: Any = None
    _monitor: Any = None

    def observeSceneClose(self) -> None:
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

    def cleanup(self) -> None:
        """Module closed (or reloaded): a running background job is cancelled, observers removed."""
        if self._monitor is not None:
            self._monitor.cancel()
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
    task ends, ``on_success(value)`` runs, or the error is shown with ``slicer.util.errorDisplay``;
    either way the GUI is reset, whatever the exception, and ``on_idle`` lets the Widget re-evaluate
    its buttons. A batch summary with failures is shown as a summary, not as an error.
    """

    def __init__(
        self,
        progress_bar: Any,
        status_label: Any,
        cancel_button: Any,
        busy_widgets: Sequence[Any] = (),
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        import qt

        self._bar = progress_bar
        self._status = status_label
        self._cancel_button = cancel_button
        self._busy_widgets = list(busy_widgets)
        self._on_idle = on_idle
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
        self._status.text = str(text)

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
        try:
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
        except Exception as error:  # never leave the GUI busy; show what happened
            self._fail(task, error)

    def _collect(self, task: BackgroundTask) -> None:
        self._timer.stop()
        self._task = None
        try:
            value = task.result()
            self._show_idle("Done.")
            if self._on_success is not None:
                self._on_success(value)
        except Exception as error:
            self._fail(task, error)
            return
        if isinstance(value, BatchSummary) and (value.failed or value.warnings):
            slicer.util.warningDisplay(str(value), windowTitle="Batch finished with failures or warnings")

    def _fail(self, task: BackgroundTask, error: Exception) -> None:
        self._timer.stop()
        self._task = None
        self._show_idle(f"Stopped: {error}")
        if task.job.cancel_requested and isinstance(error, LandmarkError):
            return
        if not isinstance(error, LandmarkError):
            logging.exception("background task failed")
        slicer.util.errorDisplay(str(error))

    def _show_idle(self, text: str) -> None:
        self._bar.setRange(0, 1000)
        self._bar.value = 0
        self._status.text = text
        self._cancel_button.enabled = False
        for widget in self._busy_widgets:
            widget.enabled = True
        if self._on_idle is not None:
            self._on_idle()
