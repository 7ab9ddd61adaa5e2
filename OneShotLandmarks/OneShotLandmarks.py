"""OneShotLandmarks: one-shot 3D landmark detection (Wang et al. 2021) as a 3D Slicer module.

The Widget binds the .ui to a parameter node and calls the Logic; the Logic converts MRML nodes
through ``LandmarkCoreLib.mrml_bridge`` and calls ``OneShotLandmarksLib`` (in-process for the Python
console and tests, or through the ``oneshot-landmarks`` CLI in a child process for the GUI, so that
training and batch detection never freeze Slicer). torch-dependent packages are imported lazily:
the module must load before the PyTorch extension has installed torch.
"""

from __future__ import annotations

import os
import pathlib
from typing import Annotated

import slicer
import vtk
from LandmarkCoreLib import slicer_support
from slicer import (
    vtkMRMLMarkupsFiducialNode,
    vtkMRMLScalarVolumeNode,
    vtkMRMLSegmentationNode,
    vtkMRMLTableNode,
)
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

CITATION = (
    "Z. Wang, Y. Liu, W. Shen et al., \"One-shot learning for landmarks detection\", "
    "MICCAI Workshop on Deep Generative Models (DGM4MICCAI) 2021."
)
MOUSE_DATA_CITATION = (
    "A. M. Maga, N. J. Tustison, B. B. Avants, \"A population level atlas of Mus musculus craniofacial "
    "skeleton and automated image-based shape analysis\", J Anat 231:433-443 (2017)."
)


#
# OneShotLandmarks
#
class OneShotLandmarks(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "One-Shot Landmarks"
        self.parent.categories = ["Landmark Detection"]
        self.parent.dependencies = []
        self.parent.contributors = ["SlicerLandmarkDetection developers"]
        self.parent.helpText = f"""
Detect the landmarks of one annotated reference volume on new 3D volumes of the same anatomy.
Place landmarks on the reference, segment the structure of interest (SOI) with the Segment Editor,
choose a validation volume with its SOI, press <b>Train</b>, then <b>Detect</b> on a target volume or
a whole folder. Training and batch detection run in the background and can be cancelled.
<p>Method: {CITATION}</p>
"""
        self.parent.acknowledgementText = f"""
Implements the one-shot method of Wang et al. (iterative SOI localization with a shallow 2D U-Net,
inertia-based rotation, rigid + demons registration). Sample data: {MOUSE_DATA_CITATION}
"""
        slicer.app.connect("startupCompleted()", registerSampleData)


#
# Sample data: public mouse skull micro-CT subjects of github.com/muratmaga/mouse_CT_atlas
#
MOUSE_ATLAS_RAW = "https://raw.githubusercontent.com/muratmaga/mouse_CT_atlas"
#: (sample name, volume path, volume SHA256, landmarks path, landmarks SHA256) at fixed commits.
MOUSE_SAMPLES = (
    (
        "MouseSkull129S1",
        "2c782f6e2786a36d5a8fa0c73ecf3eccc7786898/data/targets/129S1_SVLMJ_.nii.gz",
        "8fbf08be8e4d9e6910e8fed8b464fb40ce3837c489fc010585fbe814b34df083",
        "26e78989baf63b6954937e1113c5ac7981d143d7/data/target_LMs/129S1_SVLMJ_.mrk.json",
        "a22daffc18b233cc629c96f7998220381cf6b0f2f76ef73c52f09f25f51138cd",
    ),
    (
        "MouseSkullB6AF1",
        "2c782f6e2786a36d5a8fa0c73ecf3eccc7786898/data/targets/B6AF1_J_.nii.gz",
        "b6c34f914ed0066fe4ca30e8f274b94753bc7bd1b50477591561e62ecb4d6c74",
        "26e78989baf63b6954937e1113c5ac7981d143d7/data/target_LMs/B6AF1_J_.mrk.json",
        "d1e07d383411fc9128799ba4e8eaa6c1b6ff9d84c286a9158df143b8f3a4b496",
    ),
    (
        "MouseSkullCAST",
        "2c782f6e2786a36d5a8fa0c73ecf3eccc7786898/data/targets/CAST_EIJ_.nii.gz",
        "8b7a0f49d1a179a7802391385ce7e195f06f710b950e0674c968ad814a69cde8",
        "26e78989baf63b6954937e1113c5ac7981d143d7/data/target_LMs/CAST_EIJ_.mrk.json",
        "1ba53926b1c190492482e0c235ae00320345d4048080400548b79c936c9af9e2",
    ),
)


def registerSampleData():
    """Register the mouse skull micro-CT subjects (volume + landmarks) with the Sample Data module."""
    import SampleData

    thumbnail = os.path.join(os.path.dirname(__file__), "Resources/Icons/OneShotLandmarks.png")
    for name, volume, volume_sha, landmarks, landmarks_sha in MOUSE_SAMPLES:
        SampleData.SampleDataLogic.registerCustomSampleDataSource(
            category="Landmark Detection",
            sampleName=name,
            thumbnailFileName=thumbnail,
            uris=[f"{MOUSE_ATLAS_RAW}/{volume}", f"{MOUSE_ATLAS_RAW}/{landmarks}"],
            fileNames=[f"{name}.nii.gz", f"{name}.mrk.json"],
            checksums=[f"SHA256:{volume_sha}", f"SHA256:{landmarks_sha}"],
            nodeNames=[name, f"{name} landmarks"],
            loadFileTypes=["VolumeFile", "MarkupsFile"],
        )


#
# Parameter node
#
@parameterNodeWrapper
class OneShotLandmarksParameterNode:
    """The module's state, saved with the scene. Segment selections are kept as node + segment ID."""

    referenceVolume: vtkMRMLScalarVolumeNode
    referenceLandmarks: vtkMRMLMarkupsFiducialNode
    referenceSegmentation: vtkMRMLSegmentationNode
    referenceSegmentID: str = ""
    validationVolume: vtkMRMLScalarVolumeNode
    validationSegmentation: vtkMRMLSegmentationNode
    validationSegmentID: str = ""
    device: Annotated[str, Choice(["auto", "cpu", "cuda"])] = "auto"
    seed: Annotated[int, WithinRange(0, 2**31 - 1)] = 0
    workingSpacingMm: Annotated[float, WithinRange(0.05, 10.0)] = 1.0
    marginMm: Annotated[float, WithinRange(0.0, 50.0)] = 1.0
    maxRotationDeg: Annotated[float, WithinRange(0.0, 180.0)] = 180.0
    maxTranslationMm: Annotated[float, WithinRange(0.0, 100.0)] = 3.0
    maxEpochs: Annotated[int, WithinRange(1, 10000)] = 40
    patience: Annotated[int, WithinRange(1, 1000)] = 5
    volumesPerEpoch: Annotated[int, WithinRange(1, 1000)] = 4
    batchSize: Annotated[int, WithinRange(1, 1024)] = 32
    learningRate: Annotated[float, WithinRange(1e-6, 1.0)] = 1e-3
    modelPath: pathlib.Path = pathlib.Path()
    targetVolume: vtkMRMLScalarVolumeNode
    method: Annotated[str, Choice(["oneshot", "registration"])] = "oneshot"
    batchInputFolder: pathlib.Path = pathlib.Path()
    batchOutputFolder: pathlib.Path = pathlib.Path()
    detectedLandmarks: vtkMRMLMarkupsFiducialNode
    groundTruthLandmarks: vtkMRMLMarkupsFiducialNode
    errorTable: vtkMRMLTableNode


#: Parameter-node fields that are training settings, and the Lib's names for them.
TRAINING_SETTINGS = {
    "workingSpacingMm": "working_spacing_mm",
    "marginMm": "margin_mm",
    "maxRotationDeg": "max_rotation_deg",
    "maxTranslationMm": "max_translation_mm",
    "maxEpochs": "max_epochs",
    "patience": "patience",
    "volumesPerEpoch": "volumes_per_epoch",
    "batchSize": "batch_size",
    "learningRate": "learning_rate",
}


def _isSet(path: pathlib.Path) -> bool:
    return str(path) not in ("", ".")


#
# OneShotLandmarksWidget
#
class OneShotLandmarksWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
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
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/OneShotLandmarks.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = OneShotLandmarksLogic()

        self._monitor = slicer_support.TaskMonitor(
            self.ui.progressBar, self.ui.statusLabel, self.ui.cancelButton,
            busy_widgets=[self.ui.trainButton, self.ui.detectButton, self.ui.batchDetectButton,
                          self.ui.loadModelButton],
        )
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        # Segment selectors have no parameter-node connector: keep node + segment ID in sync by hand.
        for selector in (self.ui.referenceSegmentSelector, self.ui.validationSegmentSelector):
            selector.connect("currentNodeChanged(vtkMRMLNode*)", self._segmentSelectionToParameters)
            selector.connect("currentSegmentChanged(QString)", self._segmentSelectionToParameters)
        self.ui.referenceLandmarksSelector.connect("currentNodeChanged(vtkMRMLNode*)",
                                                   self.ui.referenceLandmarksPlaceWidget.setCurrentNode)

        self.ui.trainButton.connect("clicked(bool)", self.onTrain)
        self.ui.loadModelButton.connect("clicked(bool)", self.onLoadModel)
        self.ui.detectButton.connect("clicked(bool)", self.onDetect)
        self.ui.batchDetectButton.connect("clicked(bool)", self.onBatchDetect)
        self.ui.evaluateButton.connect("clicked(bool)", self.onEvaluate)
        self.initializeParameterNode()

    # -- parameter node -----------------------------------------------------------------------
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
        if not self._parameterNode.referenceVolume:
            firstVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            self._parameterNode.referenceVolume = firstVolume

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateGui)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateGui)
            self._updateGui()

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
        canTrain = bool(p.referenceVolume and p.referenceLandmarks and p.referenceSegmentID
                        and p.validationVolume and p.validationSegmentID and _isSet(p.modelPath))
        self.ui.trainButton.enabled = canTrain and not busy
        self.ui.trainButton.toolTip = ("Train in a background process." if canTrain else
                                       "Select reference volume, landmarks, SOI segment, validation volume "
                                       "and segment, and a model file name.")
        self.ui.detectButton.enabled = bool(p.targetVolume and self.logic.model) and not busy
        self.ui.batchDetectButton.enabled = (_isSet(p.batchInputFolder) and _isSet(p.batchOutputFolder)
                                             and _isSet(p.modelPath) and not busy)
        self.ui.evaluateButton.enabled = bool(p.detectedLandmarks and p.groundTruthLandmarks)

    # -- actions ------------------------------------------------------------------------------
    def _ready(self) -> bool:
        if not slicer_support.ensure_torch(self.moduleName):
            return False
        self._monitor.status(slicer_support.device_notice(self._parameterNode.device))
        return True

    def onTrain(self) -> None:
        if not self._ready():
            return
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Training cannot start.", waitCursor=True):
            task = self.logic.startTraining(
                p.referenceVolume, p.referenceLandmarks, p.referenceSegmentation, p.referenceSegmentID,
                p.validationVolume, p.validationSegmentation, p.validationSegmentID,
                modelPath=p.modelPath, settings=self.logic.trainingSettings(p), device=p.device, seed=p.seed,
            )
            self._monitor.run(task, "Training...", self._onModelReady)

    def _onModelReady(self, model) -> None:
        self.ui.modelInfoLabel.text = self.logic.describeModel(model)
        self._monitor.status(f"Model saved to {self._parameterNode.modelPath}.")
        self._updateGui()

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
            task = self.logic.startDetection(p.targetVolume, method=p.method, device=p.device)
            self._monitor.run(task, f"Detecting on {p.targetVolume.GetName()}...", self._onDetected)

    def _onDetected(self, markupsNode) -> None:
        self._parameterNode.detectedLandmarks = markupsNode
        slicer.util.setSliceViewerLayers(background=self._parameterNode.targetVolume, fit=True)
        self.logic.centerViewsOn(markupsNode)
        count = markupsNode.GetNumberOfControlPoints()
        self._monitor.status(f"{count} landmarks in '{markupsNode.GetName()}'.")

    def onBatchDetect(self) -> None:
        if not self._ready():
            return
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Batch detection cannot start.", waitCursor=True):
            task = self.logic.startBatchDetection(p.modelPath, p.batchInputFolder, p.batchOutputFolder,
                                                  method=p.method, device=p.device)
            self._monitor.run(task, "Batch detection...", lambda summary: self._monitor.status(summary))

    def onEvaluate(self) -> None:
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Evaluation failed.", waitCursor=True):
            table, mean = slicer_support.evaluate_markups(p.detectedLandmarks, p.groundTruthLandmarks,
                                                          p.errorTable)
            p.errorTable = table
            self.ui.evaluationResultLabel.text = (
                f"Mean radial error {mean:.3f} mm (table '{table.GetName()}')."
            )


#
# OneShotLandmarksLogic
#
class OneShotLandmarksLogic(ScriptedLoadableModuleLogic):
    """Computation on MRML nodes, no GUI: in-process methods and background (CLI) tasks."""

    CLI_MODULE = "OneShotLandmarksLib.cli"

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self.model = None

    def getParameterNode(self):
        return OneShotLandmarksParameterNode(super().getParameterNode())

    @staticmethod
    def trainingSettings(parameterNode) -> dict:
        """The Lib's training settings from the parameter node's advanced fields."""
        return {libName: getattr(parameterNode, field) for field, libName in TRAINING_SETTINGS.items()}


#
# OneShotLandmarksTest
#
class OneShotLandmarksTest(ScriptedLoadableModuleTest):
    """Self-test inside Slicer (--testing): sample data, tiny training, detection, error bound."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_TrainDetectEvaluate()
