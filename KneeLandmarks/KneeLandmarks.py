"""KneeLandmarks: KNEEL hourglass landmark detection on 2D radiographs (Tiulpin et al. 2019) in Slicer.

The Widget binds the .ui to a parameter node; the Logic converts the radiograph volume node through
``LandmarkCoreLib.mrml_bridge`` and runs ``KneeLandmarksLib`` in-process (one image takes well under a
second) or, for a folder, the ``knee-landmarks detect`` CLI in a child process. torch-dependent
packages are imported lazily so that the module loads before torch is installed.
"""

from __future__ import annotations

import pathlib
from typing import Annotated, Union

import slicer
from LandmarkCoreLib import slicer_support
from LandmarkCoreLib.errors import InputError
from LandmarkCoreLib.slicer_support import path_is_set
from slicer import (
    vtkMRMLMarkupsFiducialNode,
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
    'A. Tiulpin, I. Melekhov, S. Saarakkala, "KNEEL: Knee Anatomical Landmark Localization Using '
    'Hourglass Networks", ICCV Workshops 2019.'
)
MODEL_SOURCES = ("bundled cephalometric", "model file", "KNEEL snapshot")


#: Packages the Lib needs beyond torch and what Slicer ships (import name: pip name).
LIB_PACKAGES = {"PIL": "pillow"}


class KneeLandmarks(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "Knee Landmarks"
        self.parent.categories = ["Landmark Detection"]
        self.parent.dependencies = []
        self.parent.contributors = ["SlicerLandmarkDetection developers"]
        self.parent.helpText = f"""
Detect anatomical landmarks on a 2D radiograph with a two-stage hourglass network (KNEEL); the bundled
model adds a third stage that refines each landmark in a finer patch.
Choose the radiograph, a model (the bundled cephalometric model trained on ISBI 2015, a model file
trained with <code>knee-landmarks train</code>, or a snapshot folder published by the KNEEL authors)
and press <b>Detect</b>. A folder of images is processed in the background.
<p>Method: {CITATION}</p>
"""
        self.parent.acknowledgementText = """
The bundled cephalometric model was trained on the ISBI 2015 challenge cephalograms (Wang et al.,
Med Image Anal 2016; research use with citation). Knee radiographs of the OAI need a data-use agreement.
"""


@parameterNodeWrapper
class KneeLandmarksParameterNode:
    # typing.Union, not "|": Slicer's parameterNodeWrapper recognises node unions by typing.Union.
    inputVolume: Union[vtkMRMLScalarVolumeNode, vtkMRMLVectorVolumeNode]  # noqa: UP007
    modelSource: Annotated[str, Choice(list(MODEL_SOURCES))] = MODEL_SOURCES[0]
    modelPath: pathlib.Path = pathlib.Path()
    roiSnapshotFolder: pathlib.Path = pathlib.Path()
    landmarkSnapshotFolder: pathlib.Path = pathlib.Path()
    outputLandmarks: vtkMRMLMarkupsFiducialNode
    batchInputFolder: pathlib.Path = pathlib.Path()
    batchOutputFolder: pathlib.Path = pathlib.Path()
    detectedLandmarks: vtkMRMLMarkupsFiducialNode
    groundTruthLandmarks: vtkMRMLMarkupsFiducialNode
    errorTable: vtkMRMLTableNode


class KneeLandmarksWidget(
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
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/KneeLandmarks.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = KneeLandmarksLogic()
        self._monitor = slicer_support.TaskMonitor(
            self.ui.progressBar,
            self.ui.statusLabel,
            self.ui.cancelButton,
            busy_widgets=[self.ui.detectButton, self.ui.batchDetectButton],
        )
        self.observeSceneClose()
        self.ui.detectButton.connect("clicked(bool)", self.onDetect)
        self.ui.batchDetectButton.connect("clicked(bool)", self.onBatchDetect)
        self.ui.evaluateButton.connect("clicked(bool)", self.onEvaluate)
        self.initializeParameterNode()

    def _updateGui(self, caller=None, event=None) -> None:
        p = self._parameterNode
        if p is None:
            return
        source = p.modelSource
        self.ui.modelPathLineEdit.enabled = source != "bundled cephalometric"
        self.ui.roiSnapshotPathLineEdit.enabled = source == "KNEEL snapshot"
        self.ui.landmarkSnapshotPathLineEdit.enabled = source == "KNEEL snapshot"
        busy = self._monitor is not None and self._monitor.busy
        self.ui.detectButton.enabled = bool(p.inputVolume) and not busy
        folders = path_is_set(p.batchInputFolder) and path_is_set(p.batchOutputFolder)
        self.ui.batchDetectButton.enabled = folders and not busy
        self.ui.evaluateButton.enabled = bool(p.detectedLandmarks and p.groundTruthLandmarks)

    def _model(self):
        p = self._parameterNode
        return self.logic.loadModel(p.modelSource, p.modelPath, p.roiSnapshotFolder, p.landmarkSnapshotFolder)

    def onDetect(self) -> None:
        if not slicer_support.ensure_dependencies(self.moduleName, LIB_PACKAGES):
            return
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Detection failed.", waitCursor=True):
            model = self._model()
            self.ui.modelInfoLabel.text = self.logic.describeModel(model)
            notices = []
            node = self.logic.detect(model, p.inputVolume, p.outputLandmarks, notice=notices.append)
            p.outputLandmarks = node
            p.detectedLandmarks = node
            found = f"{node.GetNumberOfControlPoints()} landmarks in '{node.GetName()}'."
            self._monitor.status(" ".join([found, *notices, slicer_support.device_notice("auto")]))

    def onBatchDetect(self) -> None:
        if not slicer_support.ensure_dependencies(self.moduleName, LIB_PACKAGES):
            return
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Batch detection cannot start.", waitCursor=True):
            self._model()  # loads (or imports) the model; its file is what the background job reads
            task = self.logic.startBatchDetection(p.batchInputFolder, p.batchOutputFolder)
            self._monitor.run(task, "Batch detection...", self._monitor.status)

    def onEvaluate(self) -> None:
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Evaluation failed.", waitCursor=True):
            table, mean = slicer_support.evaluate_markups(
                p.detectedLandmarks, p.groundTruthLandmarks, p.errorTable
            )
            p.errorTable = table
            self.ui.evaluationResultLabel.text = (
                f"Mean radial error {mean:.2f} mm (table '{table.GetName()}')."
            )


class KneeLandmarksLogic(ScriptedLoadableModuleLogic):
    """Radiograph landmark detection on MRML nodes; no GUI code.

    :meth:`loadModel` then :meth:`detect` (in-process, well under a second per image), or
    :meth:`startBatchDetection` (the ``knee-landmarks detect`` CLI in a child process).
    """

    CLI_MODULE = "KneeLandmarksLib.cli"
    IMAGE_SUFFIXES = (
        ".png",
        ".jpg",
        ".jpeg",
        ".tif",
        ".tiff",
        ".bmp",
        ".dcm",
        ".nrrd",
        ".nii",
        ".nii.gz",
        ".mha",
        ".mhd",
    )

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self.model = None
        self.modelPath: pathlib.Path | None = None

    def getParameterNode(self):
        return KneeLandmarksParameterNode(super().getParameterNode())

    def loadModel(
        self,
        source: str = MODEL_SOURCES[0],
        modelPath=None,
        roiSnapshotFolder=None,
        landmarkSnapshotFolder=None,
    ):
        """The bundled model, a model file, or KNEEL snapshot folders imported into ``modelPath``."""
        from KneeLandmarksLib.pipeline import KneeModel, default_model_path

        if source not in MODEL_SOURCES:
            raise InputError("model source", f"'{source}' is not one of {', '.join(MODEL_SOURCES)}")
        if source == MODEL_SOURCES[0]:
            path = default_model_path()
        else:
            if modelPath is None or not path_is_set(modelPath):
                raise InputError("model file", "no file name given")
            path = pathlib.Path(modelPath)
        if source == "KNEEL snapshot":
            from KneeLandmarksLib.kneel_import import import_kneel_snapshots

            for folder, what in (
                (roiSnapshotFolder, "KNEEL ROI snapshot folder"),
                (landmarkSnapshotFolder, "KNEEL landmark snapshot folder"),
            ):
                if folder is None or not pathlib.Path(folder).is_dir():
                    raise InputError(what, f"'{folder}' is not a folder")
            import_kneel_snapshots(roiSnapshotFolder, landmarkSnapshotFolder, path)
        self.model = KneeModel.load(path)
        self.modelPath = path
        return self.model

    @staticmethod
    def describeModel(model) -> str:
        names = model.landmark_names
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        return f"{model.preset.name}: {len(names)} landmarks ({shown}); {model.stages_description}"

    def detect(self, model, inputVolume, outputNode=None, notice=None):
        """Landmarks of ``model`` on the 2D radiograph ``inputVolume``; returns the markups node (RAS)."""
        from KneeLandmarksLib.pipeline import detect_landmarks
        from LandmarkCoreLib.mrml_bridge import volume_node_to_image

        slicer_support.require_node(model, "model")
        slicer_support.require_node(inputVolume, "radiograph")
        landmarks = detect_landmarks(model, volume_node_to_image(inputVolume, dimension=2), notice=notice)
        return slicer_support.landmarks_into_node(landmarks, inputVolume, outputNode)

    def startBatchDetection(self, inputFolder, outputFolder):
        """Detect on every image of ``inputFolder`` with the loaded model, in a child process."""
        import KneeLandmarksLib
        import LandmarkCoreLib

        if self.modelPath is None:
            raise InputError("model", "load a model first")
        images = slicer_support.image_files(inputFolder, self.IMAGE_SUFFIXES)
        outputFolder = pathlib.Path(outputFolder)
        arguments = ["-m", self.modelPath, "-o", outputFolder, *images]
        return slicer_support.start_cli_task(
            self.CLI_MODULE,
            "detect",
            arguments,
            [KneeLandmarksLib, LandmarkCoreLib],
            finish=lambda result: f"{len(images)} images: landmarks written to {outputFolder}.",
        )


class KneeLandmarksTest(ScriptedLoadableModuleTest):
    """Self-test inside Slicer (--testing): a synthetic radiograph through the bundled model."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_BundledModelDetects()

    def test_BundledModelDetects(self) -> None:
        import numpy as np

        volume = slicer.util.addVolumeFromArray(
            np.random.default_rng(0).integers(0, 255, (1, 1200, 1000), dtype=np.uint8)
        )
        volume.SetSpacing(0.1, 0.1, 1.0)
        logic = KneeLandmarksLogic()
        model = logic.loadModel()
        node = logic.detect(model, volume)
        self.assertEqual(node.GetNumberOfControlPoints(), len(model.landmark_names))
        self.assertEqual(node.GetNthControlPointLabel(0), model.landmark_names[0])
        self.delayDisplay("Test passed")
