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
from LandmarkCoreLib.errors import InputError
from LandmarkCoreLib.slicer_support import path_is_set
from OneShotLandmarksLib.config import TrainingConfig
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
    'Z. Wang, C. Vandersteen, C. Raffaelli, N. Guevara, F. Patou, H. Delingette, "One-shot '
    'learning for landmarks detection", MICCAI 2021 Workshop on Data Augmentation, Labeling, and '
    "Imperfections (DALI), pp. 163-172."
)
MOUSE_DATA_CITATION = (
    'A. M. Maga, N. J. Tustison, B. B. Avants, "A population level atlas of Mus musculus craniofacial '
    'skeleton and automated image-based shape analysis", J Anat 231:433-443 (2017).'
)


#: Packages the Lib needs beyond torch and what Slicer ships (import name: pip name).
LIB_PACKAGES = {"matplotlib": "matplotlib"}


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
#: (sample name, volume path, volume SHA256, landmarks path, landmarks SHA256) at fixed commits; the
#: self-test uses them as reference, validation and target.
MOUSE_SAMPLES = (
    (
        "MouseSkullC57BL6J",
        "2c782f6e2786a36d5a8fa0c73ecf3eccc7786898/data/targets/C57BL6_J_.nii.gz",
        "c689eb2800e54fb94e2f056540bc9e19610408dd267cc01f83ac405aad498887",
        "26e78989baf63b6954937e1113c5ac7981d143d7/data/target_LMs/C57BL6_J_.mrk.json",
        "20b4a49e6d605d47ef88e221d34754c3f51f28a4358c31e3949944a1d5558408",
    ),
    (
        "MouseSkullBALBcByJ",
        "2c782f6e2786a36d5a8fa0c73ecf3eccc7786898/data/targets/BALB_CBYJ_.nii.gz",
        "d1f6afa7a0698a4f2e1f8b148f0dc36608cacdd8df63eda310dab3d822e53257",
        "f79405e7333a2b3ee145fc4978aae6754d6c4244/data/target_LMs/BALB_CBYJ.mrk.json",
        "3530afa8b871f89927e6859384983bb706316d85f3762bbaa817b4ffce23f1fb",
    ),
    (
        "MouseSkullC3HHeJ",
        "2c782f6e2786a36d5a8fa0c73ecf3eccc7786898/data/targets/C3H_HEJ_.nii.gz",
        "9a2476988c67b9aa9105b5a082b0a1abc63434ec52fee5d72ebb71686fe151fb",
        "f79405e7333a2b3ee145fc4978aae6754d6c4244/data/target_LMs/C3H_HEJ.mrk.json",
        "5ce82937d29f668578d2bec1f315377bcfb47b418d221df317565431b85eed03",
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
#: The Lib's training defaults (OneShotLandmarksLib.config imports no torch).
_TRAINING = TrainingConfig()


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
    workingSpacingMm: Annotated[float, WithinRange(0.05, 10.0)] = _TRAINING.working_spacing_mm
    marginMm: Annotated[float, WithinRange(0.0, 50.0)] = _TRAINING.margin_mm
    maxRotationDeg: Annotated[float, WithinRange(0.0, 180.0)] = _TRAINING.max_rotation_deg
    maxTranslationMm: Annotated[float, WithinRange(0.0, 100.0)] = _TRAINING.max_translation_mm
    maxEpochs: Annotated[int, WithinRange(1, 10000)] = _TRAINING.max_epochs
    patience: Annotated[int, WithinRange(1, 1000)] = _TRAINING.patience
    volumesPerEpoch: Annotated[int, WithinRange(1, 1000)] = _TRAINING.volumes_per_epoch
    batchSize: Annotated[int, WithinRange(1, 1024)] = _TRAINING.batch_size
    learningRate: Annotated[float, WithinRange(1e-6, 1.0)] = _TRAINING.learning_rate
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


#
# OneShotLandmarksWidget
#
class OneShotLandmarksWidget(
    slicer_support.ParameterNodeWidgetMixin, ScriptedLoadableModuleWidget, VTKObservationMixin
):
    """Thin GUI: binds the .ui to the parameter node, calls the Logic, shows progress and errors."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._monitor = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/OneShotLandmarks.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = OneShotLandmarksLogic()

        self._monitor = slicer_support.TaskMonitor(
            self.ui.progressBar,
            self.ui.statusLabel,
            self.ui.cancelButton,
            busy_widgets=[
                self.ui.trainButton,
                self.ui.detectButton,
                self.ui.batchDetectButton,
                self.ui.loadModelButton,
            ],
        )
        self.observeSceneClose()

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
        self.ui.evaluateButton.connect("clicked(bool)", self.onEvaluate)
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
        self.ui.detectButton.enabled = bool(p.targetVolume and self.logic.model) and not busy
        folders = path_is_set(p.batchInputFolder) and path_is_set(p.batchOutputFolder)
        self.ui.batchDetectButton.enabled = folders and path_is_set(p.modelPath) and not busy
        self.ui.evaluateButton.enabled = bool(p.detectedLandmarks and p.groundTruthLandmarks)

    # -- actions ------------------------------------------------------------------------------
    def _ready(self) -> bool:
        return slicer_support.ensure_dependencies(self.moduleName, LIB_PACKAGES)

    def _deviceNotice(self) -> str:
        return slicer_support.device_notice(self._parameterNode.device)

    def onTrain(self) -> None:
        if not self._ready():
            return
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Training cannot start.", waitCursor=True):
            task = self.logic.startTraining(
                p.referenceVolume,
                p.referenceLandmarks,
                p.referenceSegmentation,
                p.referenceSegmentID,
                p.validationVolume,
                p.validationSegmentation,
                p.validationSegmentID,
                modelPath=p.modelPath,
                settings=self.logic.trainingSettings(p),
                device=p.device,
                seed=p.seed,
            )
            self._monitor.run(task, f"Training... {self._deviceNotice()}", self._onModelReady)

    def _onModelReady(self, model) -> None:
        self.ui.modelInfoLabel.text = self.logic.describeModel(model)
        self._monitor.status(f"Model ready: {self.logic.modelPath}.")
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
            self._monitor.run(
                task, f"Detecting on {p.targetVolume.GetName()}... {self._deviceNotice()}", self._onDetected
            )

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
        if not self._ready():
            return
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Batch detection cannot start.", waitCursor=True):
            task = self.logic.startBatchDetection(
                p.modelPath, p.batchInputFolder, p.batchOutputFolder, method=p.method, device=p.device
            )
            self._monitor.run(task, f"Batch detection... {self._deviceNotice()}", self._monitor.status)

    def onEvaluate(self) -> None:
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Evaluation failed.", waitCursor=True):
            table, mean = slicer_support.evaluate_markups(
                p.detectedLandmarks, p.groundTruthLandmarks, p.errorTable
            )
            p.errorTable = table
            self.ui.evaluationResultLabel.text = (
                f"Mean radial error {mean:.3f} mm (table '{table.GetName()}')."
            )


#
# OneShotLandmarksLogic
#
class OneShotLandmarksLogic(ScriptedLoadableModuleLogic):
    """Computation on MRML nodes, no GUI code.

    In-process (Python console, tests): :meth:`train`, :meth:`detect`. In the background (GUI):
    :meth:`startTraining`, :meth:`startDetection`, :meth:`startBatchDetection` return a
    ``BackgroundTask`` running the ``oneshot-landmarks`` CLI on files written to a temporary folder.
    Every input is converted (and so checked) before anything starts or any node is created, so a
    typed error (``InputError``, ``ModelFileError``, ...) leaves the scene unchanged.
    """

    CLI_MODULE = "OneShotLandmarksLib.cli"

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self.model = None
        self.modelPath: pathlib.Path | None = None

    def getParameterNode(self):
        return OneShotLandmarksParameterNode(super().getParameterNode())

    @staticmethod
    def trainingSettings(parameterNode) -> dict:
        """The Lib's training settings from the parameter node's advanced fields."""
        return {libName: getattr(parameterNode, field) for field, libName in TRAINING_SETTINGS.items()}

    # -- inputs -----------------------------------------------------------------------------
    @staticmethod
    def _soiMask(segmentationNode, segmentID: str, volumeNode, what: str):
        from LandmarkCoreLib.mrml_bridge import segment_to_mask

        slicer_support.require_node(segmentationNode, f"{what} segmentation")
        if not segmentID:
            raise InputError(f"{what} segment", "no segment selected")
        return segment_to_mask(segmentationNode, segmentID, volumeNode)

    def trainingInputs(
        self,
        referenceVolume,
        referenceLandmarks,
        referenceSegmentation,
        referenceSegmentID,
        validationVolume,
        validationSegmentation,
        validationSegmentID,
    ) -> tuple:
        """(reference image, landmarks, reference SOI, validation image, validation SOI), all checked."""
        from LandmarkCoreLib.mrml_bridge import markups_node_to_landmarks, volume_node_to_image

        slicer_support.require_node(referenceVolume, "reference volume")
        slicer_support.require_node(referenceLandmarks, "reference landmarks")
        slicer_support.require_node(validationVolume, "validation volume")
        landmarks = markups_node_to_landmarks(referenceLandmarks)
        reference = volume_node_to_image(referenceVolume)
        referenceSoi = self._soiMask(
            referenceSegmentation, referenceSegmentID, referenceVolume, "reference SOI"
        )
        validation = volume_node_to_image(validationVolume)
        validationSoi = self._soiMask(
            validationSegmentation, validationSegmentID, validationVolume, "validation SOI"
        )
        return reference, landmarks, referenceSoi, validation, validationSoi

    @staticmethod
    def trainingConfig(settings: dict | None, device: str, seed: int):
        from OneShotLandmarksLib.config import TrainingConfig

        config = TrainingConfig.from_dict({**(settings or {}), "device": device, "seed": int(seed)})
        config.validate()
        return config

    def requireModel(self, model=None):
        model = model or self.model
        if model is None:
            raise InputError("model", "no model trained or loaded yet")
        return model

    @staticmethod
    def createThresholdSoi(volumeNode, threshold: float = 40.0, name: str | None = None):
        """A segmentation node with one segment 'SOI': voxels >= ``threshold``, largest connected part.

        For micro-CT of bone this is a usable structure of interest (the recipe of the mouse data's
        bone masks); returns ``(segmentation node, segment ID)``.
        """
        import SimpleITK as sitk
        from LandmarkCoreLib.mrml_bridge import image_to_volume_node, volume_node_to_image

        slicer_support.require_node(volumeNode, "volume to threshold")
        image = volume_node_to_image(volumeNode)
        components = sitk.ConnectedComponent(sitk.Cast(image >= float(threshold), sitk.sitkUInt8))
        largest = sitk.Cast(sitk.RelabelComponent(components, sortByObjectSize=True) == 1, sitk.sitkUInt8)
        if not sitk.GetArrayViewFromImage(largest).any():
            raise InputError(f"volume '{volumeNode.GetName()}'", f"no voxel >= {threshold}")
        scene = slicer_support.scene_of(volumeNode)
        scalar = image_to_volume_node(largest, scene, "SOI mask", create_display=False)
        labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "SOI labelmap")
        labelmap.SetAndObserveImageData(scalar.GetImageData())
        ijkToRas = vtk.vtkMatrix4x4()
        scalar.GetIJKToRASMatrix(ijkToRas)
        labelmap.SetIJKToRASMatrix(ijkToRas)
        segmentation = scene.AddNewNodeByClass(
            "vtkMRMLSegmentationNode", name or f"{volumeNode.GetName()} SOI"
        )
        segmentation.SetReferenceImageGeometryParameterFromVolumeNode(volumeNode)
        slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, segmentation)
        scene.RemoveNode(labelmap)
        scene.RemoveNode(scalar)
        segment = segmentation.GetSegmentation().GetNthSegment(0)
        segment.SetName("SOI")
        return segmentation, segmentation.GetSegmentation().GetNthSegmentID(0)

    # -- in-process ---------------------------------------------------------------------------
    def train(
        self,
        referenceVolume,
        referenceLandmarks,
        referenceSegmentation,
        referenceSegmentID,
        validationVolume,
        validationSegmentation,
        validationSegmentID,
        settings: dict | None = None,
        device: str = "auto",
        seed: int = 0,
        modelPath=None,
        progress=None,
        cancel=None,
    ):
        """Train a model on the given nodes (blocking); saved to ``modelPath`` when given."""
        from LandmarkCoreLib.progress import no_progress
        from OneShotLandmarksLib.pipeline import train_model

        inputs = self.trainingInputs(
            referenceVolume,
            referenceLandmarks,
            referenceSegmentation,
            referenceSegmentID,
            validationVolume,
            validationSegmentation,
            validationSegmentID,
        )
        config = self.trainingConfig(settings, device, seed)
        model = train_model(*inputs, config=config, progress=progress or no_progress, cancel=cancel)
        if modelPath:
            model.save(modelPath)
            self.modelPath = pathlib.Path(modelPath)
        self.model = model
        return model

    def detect(
        self,
        targetVolume,
        model=None,
        method: str = "oneshot",
        outputNode=None,
        device: str = "auto",
        progress=None,
        cancel=None,
    ):
        """Detect the model's landmarks on ``targetVolume``; returns the markups node (RAS)."""
        from LandmarkCoreLib.mrml_bridge import volume_node_to_image
        from LandmarkCoreLib.progress import no_progress
        from OneShotLandmarksLib.pipeline import detect_landmarks

        model = self.requireModel(model)
        slicer_support.require_node(targetVolume, "target volume")
        result = detect_landmarks(
            model,
            volume_node_to_image(targetVolume),
            method=method,
            progress=progress or no_progress,
            cancel=cancel,
            device=device,
        )
        return slicer_support.landmarks_into_node(result.landmarks, targetVolume, outputNode)

    # -- model files --------------------------------------------------------------------------
    def loadModel(self, path):
        """Load a one-shot model file (ModelFileError for a corrupt file or another module's model)."""
        from OneShotLandmarksLib.model import OneShotModel

        if not path_is_set(path):
            raise InputError("model file", "no file name given")
        self.model = OneShotModel.load(path)
        self.modelPath = pathlib.Path(path)
        return self.model

    @staticmethod
    def describeModel(model) -> str:
        """What a model was trained on, for the Model section."""
        summary = model.training_summary
        loss = summary.get("best_validation_loss")
        lines = [
            f"{len(model.landmarks)} landmarks from '{model.landmarks.name or 'reference'}' "
            f"({', '.join(model.landmarks.labels[:6])}{', ...' if len(model.landmarks) > 6 else ''})",
            f"working spacing {model.training.working_spacing_mm:g} mm, cube {model.cube_size} voxels",
            f"{summary.get('epochs', '?')} epochs, best validation loss "
            + (f"{loss:.4f} (epoch {summary.get('best_epoch')})" if loss is not None else "unknown"),
        ]
        return "\n".join(lines)

    # -- background (CLI child process) -------------------------------------------------------
    @staticmethod
    def _packages() -> list:
        import LandmarkCoreLib
        import OneShotLandmarksLib

        return [OneShotLandmarksLib, LandmarkCoreLib]

    def startTraining(
        self,
        referenceVolume,
        referenceLandmarks,
        referenceSegmentation,
        referenceSegmentID,
        validationVolume,
        validationSegmentation,
        validationSegmentID,
        modelPath,
        settings: dict | None = None,
        device: str = "auto",
        seed: int = 0,
    ):
        """Write the inputs to a temporary folder and train with the CLI in a child process.

        The task's result is the trained model (also loaded into this Logic). Cancel keeps the CLI's
        last checkpoint beside ``modelPath``; training again resumes from it.
        """
        from LandmarkCoreLib.images import write_image
        from LandmarkCoreLib.landmarks import write_landmarks

        if not path_is_set(modelPath):
            raise InputError("model file", "no file name given")
        reference, landmarks, referenceSoi, validation, validationSoi = self.trainingInputs(
            referenceVolume,
            referenceLandmarks,
            referenceSegmentation,
            referenceSegmentID,
            validationVolume,
            validationSegmentation,
            validationSegmentID,
        )
        config = self.trainingConfig(settings, device, seed)
        arguments = self._cliTrainingArguments(config)
        folder = slicer_support.work_folder("oneshot-train")
        work = pathlib.Path(folder.name)
        files = {
            "reference": work / "reference.nrrd",
            "reference-soi": work / "reference_soi.nrrd",
            "validation": work / "validation.nrrd",
            "validation-soi": work / "validation_soi.nrrd",
            "reference-landmarks": work / "reference.mrk.json",
        }
        for key, image in (
            ("reference", reference),
            ("reference-soi", referenceSoi),
            ("validation", validation),
            ("validation-soi", validationSoi),
        ):
            write_image(files[key], image)
        write_landmarks(files["reference-landmarks"], landmarks)
        arguments += [item for key, path in files.items() for item in (f"--{key}", path)]
        arguments += ["-o", modelPath]
        return slicer_support.start_cli_task(
            self.CLI_MODULE,
            "train",
            arguments,
            self._packages(),
            finish=lambda result: self.loadModel(modelPath),
            folder=folder,
        )

    @staticmethod
    def _cliTrainingArguments(config) -> list:
        """The CLI's flags for ``config``; a setting the CLI cannot take must keep its default."""
        from OneShotLandmarksLib.config import TrainingConfig

        flags = {
            "working_spacing_mm": "--spacing",
            "max_epochs": "--max-epochs",
            "patience": "--patience",
            "volumes_per_epoch": "--volumes-per-epoch",
            "width": "--width",
            "seed": "--seed",
            "device": "--device",
        }
        defaults = TrainingConfig().to_dict()
        arguments = []
        for name, value in config.to_dict().items():
            if name in flags:
                arguments += [flags[name], value]
            elif value != defaults[name]:
                raise InputError(
                    f"training setting '{name}'",
                    "background training keeps its default "
                    f"({defaults[name]}); use OneShotLandmarksLogic().train() from the Python "
                    "console to change it",
                )
        return arguments

    def startDetection(self, targetVolume, method: str = "oneshot", device: str = "auto", outputNode=None):
        """Detect on one target volume in a child process; the task's result is the markups node."""
        from LandmarkCoreLib.images import write_image
        from LandmarkCoreLib.landmarks import read_landmarks
        from LandmarkCoreLib.mrml_bridge import volume_node_to_image

        self.requireModel()
        if self.modelPath is None:
            raise InputError("model", "save the model to a file first (background detection reads the file)")
        slicer_support.require_node(targetVolume, "target volume")
        folder = slicer_support.work_folder("oneshot-detect")
        work = pathlib.Path(folder.name)
        write_image(work / "target.nrrd", volume_node_to_image(targetVolume))

        def finish(result):
            landmarks = read_landmarks(work / "out" / "target.mrk.json", "detected landmarks")
            return slicer_support.landmarks_into_node(landmarks, targetVolume, outputNode)

        arguments = [
            "-m",
            self.modelPath,
            "-o",
            work / "out",
            "--method",
            method,
            "--device",
            device,
            work / "target.nrrd",
        ]
        return slicer_support.start_cli_task(
            self.CLI_MODULE, "detect", arguments, self._packages(), finish, folder=folder
        )

    def startBatchDetection(
        self, modelPath, inputFolder, outputFolder, method: str = "oneshot", device: str = "auto"
    ):
        """Detect on every volume of ``inputFolder`` in a child process; writes to ``outputFolder``.

        The task's result is a one-line summary; failed targets are recorded by the CLI without
        losing the other targets' results.
        """
        self.loadModel(modelPath)  # a wrong or foreign model file fails here, before anything starts
        inputFolder, outputFolder = pathlib.Path(inputFolder), pathlib.Path(outputFolder)
        if not inputFolder.is_dir():
            raise InputError(f"input folder '{inputFolder}'", "does not exist")

        def finish(result):
            written = sorted(outputFolder.glob("*.mrk.json"))
            return f"{len(written)} landmark files written to {outputFolder}."

        arguments = ["-m", modelPath, "-o", outputFolder, "--method", method, "--device", device, inputFolder]
        return slicer_support.start_cli_task(self.CLI_MODULE, "detect", arguments, self._packages(), finish)


#
# OneShotLandmarksTest
#
class OneShotLandmarksTest(ScriptedLoadableModuleTest):
    """Self-test inside Slicer (--testing): sample data, tiny training, detection, error bound."""

    #: Reduced training: runs in about a minute on a CPU; full training reaches ~0.3-0.4 mm.
    TINY = {"max_epochs": 2, "volumes_per_epoch": 1, "width": 16, "patience": 1}
    ERROR_BOUND_MM = 1.0

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_TrainDetectEvaluate()

    def test_TrainDetectEvaluate(self) -> None:
        import tempfile

        import SampleData

        self.delayDisplay("Loading the mouse skull sample data")
        (reference, referenceLandmarks), (validation, _), (target, targetTruth) = (
            SampleData.SampleDataLogic().downloadSamples(sample[0]) for sample in MOUSE_SAMPLES
        )
        logic = OneShotLandmarksLogic()
        referenceSoi, referenceSegment = logic.createThresholdSoi(reference)
        validationSoi, validationSegment = logic.createThresholdSoi(validation)

        self.delayDisplay("Training with tiny settings")
        with tempfile.TemporaryDirectory() as folder:
            logic.train(
                reference,
                referenceLandmarks,
                referenceSoi,
                referenceSegment,
                validation,
                validationSoi,
                validationSegment,
                settings=self.TINY,
                device="cpu",
                modelPath=os.path.join(folder, "model.pt"),
            )
        self.delayDisplay("Detecting")
        detected = logic.detect(target, device="cpu")
        self.assertEqual(detected.GetNumberOfControlPoints(), referenceLandmarks.GetNumberOfControlPoints())
        table, mean = slicer_support.evaluate_markups(detected, targetTruth)
        self.delayDisplay(f"Mean radial error {mean:.3f} mm")
        self.assertLess(mean, self.ERROR_BOUND_MM)
        self.delayDisplay("Test passed")
