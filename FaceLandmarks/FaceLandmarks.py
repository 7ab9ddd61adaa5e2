"""FaceLandmarks: 68-point facial landmarks with cross-task representation learning (Fu et al. 2020).

The Widget binds the .ui to a parameter node; the Logic converts the photograph volume node (RGB or
grey) and the optional face ROI through ``LandmarkCoreLib.mrml_bridge`` and runs ``FaceLandmarksLib``
in-process (milliseconds per face) or, for a folder, the ``face-landmarks detect`` CLI in a child
process. torch-dependent packages are imported lazily so the module loads before torch is installed.
"""

from __future__ import annotations

import pathlib
from typing import Annotated, Union

import slicer
import vtk
from LandmarkCoreLib import slicer_support
from slicer import (
    vtkMRMLMarkupsFiducialNode,
    vtkMRMLMarkupsROINode,
    vtkMRMLScalarVolumeNode,
    vtkMRMLTableNode,
    vtkMRMLVectorVolumeNode,
)
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

CITATION = (
    "Z. Fu, J. Jiao, M. Suttie, J. A. Noble, \"Cross-Task Representation Learning for Anatomical "
    "Landmark Detection\", MICCAI Workshop on Machine Learning in Medical Imaging (MLMI) 2020."
)
FACE_REGIONS = ("whole image", "ROI")
MODEL_SOURCES = ("bundled", "model file")


class FaceLandmarks(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "Face Landmarks"
        self.parent.categories = ["Landmark Detection"]
        self.parent.dependencies = []
        self.parent.contributors = ["SlicerLandmarkDetection developers"]
        self.parent.helpText = f"""
Detect the 68 facial landmarks (iBUG/300-W layout) on a 2D photograph. Choose the photograph, the face
region (the whole image or a markups ROI drawn around the face), a model, and press <b>Detect</b>.
A folder of photographs is processed in the background.
<p>Method: {CITATION}</p>
"""
        self.parent.acknowledgementText = """
The bundled model was trained on frames of the YouTube Faces DB (Wolf, Hassner, Maoz, CVPR 2011) with
68-point annotations; research use.
"""


@parameterNodeWrapper
class FaceLandmarksParameterNode:
    # typing.Union, not "|": Slicer's parameterNodeWrapper recognises node unions by typing.Union.
    inputVolume: Union[vtkMRMLScalarVolumeNode, vtkMRMLVectorVolumeNode]  # noqa: UP007
    faceRegion: Annotated[str, Choice(list(FACE_REGIONS))] = FACE_REGIONS[0]
    faceRoi: vtkMRMLMarkupsROINode
    modelSource: Annotated[str, Choice(list(MODEL_SOURCES))] = MODEL_SOURCES[0]
    modelPath: pathlib.Path = pathlib.Path()
    outputLandmarks: vtkMRMLMarkupsFiducialNode
    batchInputFolder: pathlib.Path = pathlib.Path()
    batchOutputFolder: pathlib.Path = pathlib.Path()
    detectedLandmarks: vtkMRMLMarkupsFiducialNode
    groundTruthLandmarks: vtkMRMLMarkupsFiducialNode
    errorTable: vtkMRMLTableNode


def _isSet(path: pathlib.Path) -> bool:
    return str(path) not in ("", ".")


class FaceLandmarksWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Thin GUI: binds the .ui to the parameter node, calls the Logic, shows progress and errors."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._monitor = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/FaceLandmarks.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = FaceLandmarksLogic()
        self._monitor = slicer_support.TaskMonitor(
            self.ui.progressBar, self.ui.statusLabel, self.ui.cancelButton,
            busy_widgets=[self.ui.detectButton, self.ui.batchDetectButton],
        )
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.detectButton.connect("clicked(bool)", self.onDetect)
        self.ui.batchDetectButton.connect("clicked(bool)", self.onBatchDetect)
        self.ui.evaluateButton.connect("clicked(bool)", self.onEvaluate)
        self.initializeParameterNode()

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

    def _updateGui(self, caller=None, event=None) -> None:
        p = self._parameterNode
        if p is None:
            return
        self.ui.faceRoiSelector.enabled = p.faceRegion == "ROI"
        self.ui.modelPathLineEdit.enabled = p.modelSource == "model file"
        busy = self._monitor is not None and self._monitor.busy
        needsRoi = p.faceRegion == "ROI" and not p.faceRoi
        self.ui.detectButton.enabled = bool(p.inputVolume) and not needsRoi and not busy
        self.ui.batchDetectButton.enabled = (_isSet(p.batchInputFolder) and _isSet(p.batchOutputFolder)
                                             and not busy)
        self.ui.evaluateButton.enabled = bool(p.detectedLandmarks and p.groundTruthLandmarks)

    def onDetect(self) -> None:
        if not slicer_support.ensure_torch(self.moduleName):
            return
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Detection failed.", waitCursor=True):
            model = self.logic.loadModel(p.modelSource, p.modelPath)
            self.ui.modelInfoLabel.text = self.logic.describeModel(model)
            roi = p.faceRoi if p.faceRegion == "ROI" else None
            node = self.logic.detect(model, p.inputVolume, roi, p.outputLandmarks)
            p.outputLandmarks = node
            p.detectedLandmarks = node
            self._monitor.status(f"{node.GetNumberOfControlPoints()} landmarks in '{node.GetName()}'. "
                                 + slicer_support.device_notice("auto"))

    def onBatchDetect(self) -> None:
        if not slicer_support.ensure_torch(self.moduleName):
            return
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Batch detection cannot start.", waitCursor=True):
            task = self.logic.startBatchDetection(p.modelSource, p.modelPath, p.batchInputFolder,
                                                  p.batchOutputFolder)
            self._monitor.run(task, "Batch detection...", self._monitor.status)

    def onEvaluate(self) -> None:
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Evaluation failed.", waitCursor=True):
            table, mean = slicer_support.evaluate_markups(p.detectedLandmarks, p.groundTruthLandmarks,
                                                          p.errorTable)
            p.errorTable = table
            self.ui.evaluationResultLabel.text = (
                f"Mean radial error {mean:.2f} mm (table '{table.GetName()}')."
            )


class FaceLandmarksLogic(ScriptedLoadableModuleLogic):
    """Facial landmark detection on MRML nodes; no GUI code."""

    CLI_MODULE = "FaceLandmarksLib.cli"

    def getParameterNode(self):
        return FaceLandmarksParameterNode(super().getParameterNode())


class FaceLandmarksTest(ScriptedLoadableModuleTest):
    """Self-test inside Slicer (--testing): a photograph through the bundled model."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_BundledModelDetects()
