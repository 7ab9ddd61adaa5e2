"""The Widget bases: what every module's Widget does (panel, Logic, progress/Cancel, parameter node),
and the Widget both 2D detector modules (KneeLandmarks, FaceLandmarks) share; each module supplies its
Logic, its inputs dataclass and what its own panel enables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import slicer
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleWidget
from slicer.util import VTKObservationMixin

from . import gui
from .scene import path_is_set


class ModuleWidget(gui.ParameterNodeWidgetMixin, ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Loads ``Resources/UI/<module>.ui``, creates the Logic and the TaskMonitor.

    The module's ``setup`` calls :meth:`loadPanel`, connects its buttons, then initializes the parameter node.
    """

    #: Set by the module: its Logic class.
    logicClass: Any = None

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None

    def loadPanel(self, busyButtons: Sequence[str]) -> None:
        """The .ui, the Logic, progress/Cancel (``busyButtons`` are disabled while a job runs)."""
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath(f"UI/{self.moduleName}.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = self.logicClass()
        self._monitor = gui.TaskMonitor(
            self.ui.progressBar,
            self.ui.statusLabel,
            self.ui.cancelButton,
            busy_widgets=[getattr(self.ui, name) for name in busyButtons],
            on_idle=self._updateGui,
        )
        self.observeSceneClose()
        self.ui.evaluateButton.connect("clicked(bool)", self.onEvaluate)

    def onEvaluate(self) -> None:
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Evaluation failed.", waitCursor=True):
            table, mean = self.logic.evaluate(p.detectedLandmarks, p.groundTruthLandmarks, p.errorTable)
            p.errorTable = table
            self.ui.evaluationResultLabel.text = (
                f"Mean radial error {mean:.3g} mm (table '{table.GetName()}')."
            )


class DetectorWidget(ModuleWidget):
    """Detect on one image in-process (well under a second), a folder in the background, evaluate."""

    #: Set by the module: its inputs dataclass; ``{import name: pip name}`` its Lib needs beyond torch.
    inputsClass: Any = None
    libPackages: dict[str, str] = {"PIL": "pillow"}

    def setup(self) -> None:
        self.loadPanel(["detectButton", "batchDetectButton"])
        self.ui.detectButton.connect("clicked(bool)", self.onDetect)
        self.ui.batchDetectButton.connect("clicked(bool)", self.onBatchDetect)
        self.initializeParameterNode()

    def canDetect(self, parameterNode) -> bool:
        """Whether the module's own selections allow Detect (beyond an input image)."""
        return True

    def updateModuleGui(self, parameterNode) -> None:
        """Enable the module's own widgets."""

    def _updateGui(self, caller=None, event=None) -> None:
        p = self._parameterNode
        if p is None:
            return
        self.ui.modelPathLineEdit.enabled = p.modelSource != self.logicClass.MODEL_SOURCES[0]
        self.updateModuleGui(p)
        busy = self._monitor is not None and self._monitor.busy
        self.ui.detectButton.enabled = bool(p.inputVolume) and self.canDetect(p) and not busy
        folders = path_is_set(p.batchInputFolder) and path_is_set(p.batchOutputFolder)
        self.ui.batchDetectButton.enabled = folders and not busy
        self.ui.evaluateButton.enabled = bool(p.detectedLandmarks and p.groundTruthLandmarks)

    def _inputs(self):
        return self.inputsClass.fromParameterNode(self._parameterNode)

    def _loadModel(self, inputs) -> Any:
        model = self.logic.loadModel(inputs)
        self.ui.modelInfoLabel.text = self.logic.describeModel(model)
        return model

    def onDetect(self) -> None:
        if not gui.ensure_dependencies(self.moduleName, self.libPackages):
            return
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Detection failed.", waitCursor=True):
            inputs = self._inputs()
            model = self._loadModel(inputs)
            notices = []
            node = self.logic.detect(inputs, model, notice=notices.append)
            p.outputLandmarks = node
            p.detectedLandmarks = node
            found = f"{node.GetNumberOfControlPoints()} landmarks in '{node.GetName()}'."
            self._monitor.status(" ".join([found, *notices, gui.device_notice("auto")]))

    def onBatchDetect(self) -> None:
        packages = gui.batch_packages(self.libPackages, self._parameterNode.batchWorkers)
        if not gui.ensure_dependencies(self.moduleName, packages):
            return
        with slicer.util.tryWithErrorDisplay("Batch detection cannot start.", waitCursor=True):
            inputs = self._inputs()
            self._loadModel(inputs)  # the file the background job reads; a foreign file fails here
            task = self.logic.startBatchDetection(inputs)
            self._monitor.run(task, "Batch detection...", self._monitor.status)
