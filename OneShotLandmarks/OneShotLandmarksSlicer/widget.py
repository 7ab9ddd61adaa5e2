"""OneShotLandmarksWidget: binds the .ui to the parameter node, calls the Logic, shows progress."""

from __future__ import annotations

import slicer
from LandmarkSlicerLib import gui
from LandmarkSlicerLib.parameters import derivable_parameters
from LandmarkSlicerLib.scene import path_is_set
from LandmarkSlicerLib.widgets import ModuleWidget
from OneShotLandmarksLib.config import TrainingConfig

from .logic import DetectionInputs, OneShotLandmarksLogic, TrainingInputs

#: Packages the Lib needs beyond torch and what Slicer ships (import name: pip name).
LIB_PACKAGES = {"matplotlib": "matplotlib"}


class OneShotLandmarksWidget(ModuleWidget):
    """Thin GUI: every action builds the Logic's inputs from the parameter node."""

    logicClass = OneShotLandmarksLogic

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._autoTexts: dict[str, str] = {}  # the .ui's text of each 'auto' spin box

    def setup(self) -> None:
        self.loadPanel(["trainButton", "loadModelButton", "detectButton", "batchDetectButton"])
        # Segment selectors have no parameter-node connector: keep node + segment ID in sync by hand.
        for selector in (self.ui.referenceSegmentSelector, self.ui.validationSegmentSelector):
            selector.connect("currentNodeChanged(vtkMRMLNode*)", self._segmentSelectionToParameters)
            selector.connect("currentSegmentChanged(QString)", self._segmentSelectionToParameters)
        self.ui.referenceLandmarksSelector.connect(
            "currentNodeChanged(vtkMRMLNode*)", self.ui.referenceLandmarksPlaceWidget.setCurrentNode
        )
        self.ui.trainButton.connect("clicked(bool)", self.onTrain)
        self.ui.loadModelButton.connect("clicked(bool)", self.onLoadModel)
        self.ui.detectButton.connect("clicked(bool)", self.onDetect)
        self.ui.batchDetectButton.connect("clicked(bool)", self.onBatchDetect)
        self.initializeParameterNode()

    # -- parameter node -----------------------------------------------------------------------
    def initializeParameterNode(self) -> None:
        super().initializeParameterNode()
        if not self._parameterNode.referenceVolume:
            firstVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            self._parameterNode.referenceVolume = firstVolume

    def _segmentSelectionToParameters(self, *args) -> None:
        p = self._parameterNode
        if p is None:
            return
        p.referenceSegmentation = self.ui.referenceSegmentSelector.currentNode()
        p.referenceSegmentID = self.ui.referenceSegmentSelector.currentSegmentID() or ""
        p.validationSegmentation = self.ui.validationSegmentSelector.currentNode()
        p.validationSegmentID = self.ui.validationSegmentSelector.currentSegmentID() or ""

    def _updateGui(self, caller=None, event=None) -> None:
        p = self._parameterNode
        if p is None:
            return
        for selector, node, segment in (
            (self.ui.referenceSegmentSelector, p.referenceSegmentation, p.referenceSegmentID),
            (self.ui.validationSegmentSelector, p.validationSegmentation, p.validationSegmentID),
        ):
            wasBlocked = selector.blockSignals(True)
            selector.setCurrentNode(node)
            selector.setCurrentSegmentID(segment)
            selector.blockSignals(wasBlocked)
        busy = self._monitor is not None and self._monitor.busy
        canTrain = bool(
            p.referenceVolume
            and p.referenceLandmarks
            and p.referenceSegmentID
            and p.validationVolume
            and p.validationSegmentID
            and path_is_set(p.modelPath)
        )
        self.ui.trainButton.enabled = canTrain and not busy
        self.ui.trainButton.toolTip = (
            "Train in a background process."
            if canTrain
            else "Select reference volume, landmarks, SOI segment, validation volume "
            "and segment, and a model file name."
        )
        self.ui.loadModelButton.enabled = path_is_set(p.modelPath) and not busy
        self.ui.detectButton.enabled = bool(p.targetVolume and self.logic.model) and not busy
        folders = path_is_set(p.batchInputFolder) and path_is_set(p.batchOutputFolder)
        self.ui.batchDetectButton.enabled = folders and path_is_set(p.modelPath) and not busy
        self.ui.evaluateButton.enabled = bool(p.detectedLandmarks and p.groundTruthLandmarks)

    # -- actions ------------------------------------------------------------------------------
    def _ready(self, workers: int = 0) -> bool:
        return gui.ensure_dependencies(self.moduleName, gui.batch_packages(LIB_PACKAGES, workers))

    def _deviceNotice(self) -> str:
        return gui.device_notice(self._parameterNode.device)

    def onTrain(self) -> None:
        if not self._ready():
            return
        with slicer.util.tryWithErrorDisplay("Training cannot start.", waitCursor=True):
            task = self.logic.startTraining(TrainingInputs.fromParameterNode(self._parameterNode))
            self._monitor.run(task, f"Training... {self._deviceNotice()}", self._onModelReady)

    def _onModelReady(self, model) -> None:
        self.ui.modelInfoLabel.text = self.logic.describeModel(model)
        self._showDerivedSettings(model)
        self._monitor.status(f"Model ready: {self.logic.modelPath}.")
        self._updateGui()

    def _showDerivedSettings(self, model) -> None:
        """Advanced spin boxes left at 'auto' show what this model derived ('auto (this model: 2 mm)')."""
        derived = self.logic.derivedSettings(model)
        settings = derivable_parameters(TrainingConfig)
        for spinBox in vars(self.ui).values():
            setting = settings.get(str(spinBox.property("SlicerParameterName") or ""))
            if setting is None:
                continue
            autoText = self._autoTexts.setdefault(setting, spinBox.specialValueText)
            value = derived.get(setting)
            spinBox.specialValueText = (
                autoText if value is None else f"auto (this model: {value:g}{spinBox.suffix})"
            )

    def onLoadModel(self) -> None:
        if not self._ready():
            return
        with slicer.util.tryWithErrorDisplay("The model file cannot be loaded.", waitCursor=True):
            self._onModelReady(self.logic.loadModel(self._parameterNode.modelPath))

    def onDetect(self) -> None:
        if not self._ready():
            return
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Detection cannot start.", waitCursor=True):
            task = self.logic.startDetection(DetectionInputs.fromParameterNode(p))
            description = f"Detecting on {p.targetVolume.GetName()}... {self._deviceNotice()}"
            self._monitor.run(task, description, self._onDetected)

    def _onDetected(self, markupsNode) -> None:
        self._parameterNode.detectedLandmarks = markupsNode
        slicer.util.setSliceViewerLayers(background=self._parameterNode.targetVolume, fit=True)
        self._centerViewsOn(markupsNode)
        count = markupsNode.GetNumberOfControlPoints()
        self._monitor.status(f"{count} landmarks in '{markupsNode.GetName()}'.")

    @staticmethod
    def _centerViewsOn(markupsNode) -> None:
        """Jump the slice views to the centre of the detected landmarks (QC)."""
        import numpy as np

        points = slicer.util.arrayFromMarkupsControlPoints(markupsNode)
        if len(points):
            centre = np.nanmean(points, axis=0)
            slicer.modules.markups.logic().JumpSlicesToLocation(*centre, True)

    def onBatchDetect(self) -> None:
        p = self._parameterNode
        if not self._ready(p.batchWorkers):
            return
        with slicer.util.tryWithErrorDisplay("Batch detection cannot start.", waitCursor=True):
            task = self.logic.startBatchDetection(DetectionInputs.fromParameterNode(p), p.modelPath)
            self._monitor.run(task, f"Batch detection... {self._deviceNotice()}", self._monitor.status)
