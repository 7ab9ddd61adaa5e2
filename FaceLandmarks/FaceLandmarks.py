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
from LandmarkCoreLib import slicer_support
from LandmarkCoreLib.errors import InputError
from LandmarkCoreLib.slicer_support import path_is_set
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
    'Z. Fu, J. Jiao, M. Suttie, J. A. Noble, "Cross-Task Representation Learning for Anatomical '
    'Landmark Detection", MICCAI Workshop on Machine Learning in Medical Imaging (MLMI) 2020.'
)
FACE_REGIONS = ("whole image", "ROI")
MODEL_SOURCES = ("bundled", "model file")


#: Packages the Lib needs beyond torch and what Slicer ships (import name: pip name).
LIB_PACKAGES = {"PIL": "pillow"}


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


class FaceLandmarksWidget(
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
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/FaceLandmarks.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = FaceLandmarksLogic()
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
        self.ui.faceRoiSelector.enabled = p.faceRegion == "ROI"
        self.ui.modelPathLineEdit.enabled = p.modelSource == "model file"
        busy = self._monitor is not None and self._monitor.busy
        needsRoi = p.faceRegion == "ROI" and not p.faceRoi
        self.ui.detectButton.enabled = bool(p.inputVolume) and not needsRoi and not busy
        folders = path_is_set(p.batchInputFolder) and path_is_set(p.batchOutputFolder)
        self.ui.batchDetectButton.enabled = folders and not busy
        self.ui.evaluateButton.enabled = bool(p.detectedLandmarks and p.groundTruthLandmarks)

    def onDetect(self) -> None:
        if not slicer_support.ensure_dependencies(self.moduleName, LIB_PACKAGES):
            return
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Detection failed.", waitCursor=True):
            model = self.logic.loadModel(p.modelSource, p.modelPath)
            self.ui.modelInfoLabel.text = self.logic.describeModel(model)
            roi = p.faceRoi if p.faceRegion == "ROI" else None
            node = self.logic.detect(model, p.inputVolume, roi, p.outputLandmarks)
            p.outputLandmarks = node
            p.detectedLandmarks = node
            self._monitor.status(
                f"{node.GetNumberOfControlPoints()} landmarks in '{node.GetName()}'. "
                + slicer_support.device_notice("auto")
            )

    def onBatchDetect(self) -> None:
        if not slicer_support.ensure_dependencies(self.moduleName, LIB_PACKAGES):
            return
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Batch detection cannot start.", waitCursor=True):
            self.logic.loadModel(p.modelSource, p.modelPath)  # the file the background job reads
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


class FaceLandmarksLogic(ScriptedLoadableModuleLogic):
    """Facial landmark detection on MRML nodes; no GUI code.

    :meth:`loadModel` then :meth:`detect` (in-process, milliseconds per face), or
    :meth:`startBatchDetection` (the ``face-landmarks detect`` CLI in a child process).
    """

    CLI_MODULE = "FaceLandmarksLib.cli"
    IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self.model = None
        self.modelPath: pathlib.Path | None = None

    def getParameterNode(self):
        return FaceLandmarksParameterNode(super().getParameterNode())

    def loadModel(self, source: str = MODEL_SOURCES[0], modelPath=None):
        """The bundled 68-point model or a trained model file (ModelFileError for a foreign file)."""
        from FaceLandmarksLib.pipeline import FaceModel, default_model_path

        if source not in MODEL_SOURCES:
            raise InputError("model source", f"'{source}' is not one of {', '.join(MODEL_SOURCES)}")
        if source == MODEL_SOURCES[0]:
            path = default_model_path()
        elif modelPath is None or not path_is_set(modelPath):
            raise InputError("model file", "no file name given")
        else:
            path = pathlib.Path(modelPath)
        self.model = FaceModel.load(path)
        self.modelPath = path
        return self.model

    def describeModel(self, model) -> str:
        return f"68-point face model from {self.modelPath.name if self.modelPath else 'memory'}"

    @staticmethod
    def faceBox(roiNode) -> tuple[float, float, float, float]:
        """The ROI's extent in the photograph's physical space (LPS mm): (x0, y0, x1, y1)."""
        bounds = [0.0] * 6
        roiNode.GetRASBounds(bounds)
        if bounds[1] <= bounds[0] or bounds[3] <= bounds[2]:
            raise InputError(f"face ROI '{roiNode.GetName()}'", "is empty; draw it around the face")
        # LPS x = -R, y = -A
        return -bounds[1], -bounds[3], -bounds[0], -bounds[2]

    def detect(self, model, inputVolume, roiNode=None, outputNode=None, keepFlagged: bool = False):
        """The 68 landmarks on the 2D photograph ``inputVolume`` (whole image, or inside ``roiNode``).

        When the heatmap peaks say there is no face in the region, InputError is raised (nothing is
        added to the scene) unless ``keepFlagged``.
        """
        from FaceLandmarksLib.pipeline import detect_landmarks
        from LandmarkCoreLib.mrml_bridge import volume_node_to_image

        slicer_support.require_node(model, "model")
        slicer_support.require_node(inputVolume, "photograph")
        what = f"photograph '{inputVolume.GetName()}'"
        box = self.faceBox(roiNode) if roiNode is not None else None
        detection = detect_landmarks(model, volume_node_to_image(inputVolume, dimension=2), box, what=what)
        if detection.flagged_no_face and not keepFlagged:
            raise InputError(
                what,
                f"no face found in the face region (mean heatmap peak "
                f"{detection.peak_confidence.mean():.2f}); draw a face ROI around the face",
            )
        return slicer_support.landmarks_into_node(detection.landmarks, inputVolume, outputNode)

    def startBatchDetection(self, inputFolder, outputFolder):
        """Detect on every photograph of ``inputFolder`` (whole image) with the loaded model.

        Photographs without a face are reported in the summary, not written (the CLI's exit status 3).
        """
        import FaceLandmarksLib
        import LandmarkCoreLib

        if self.modelPath is None:
            raise InputError("model", "load a model first")
        images = slicer_support.image_files(inputFolder, self.IMAGE_SUFFIXES)
        outputFolder = pathlib.Path(outputFolder)

        def finish(result):
            written = sum((outputFolder / f"{path.name.split('.')[0]}.mrk.json").is_file() for path in images)
            return f"{written} of {len(images)} photographs: landmarks written to {outputFolder}" + (
                f"; {len(images) - written} without a face." if written < len(images) else "."
            )

        arguments = ["-m", self.modelPath, "-o", outputFolder, *images]
        return slicer_support.start_cli_task(
            self.CLI_MODULE,
            "detect",
            arguments,
            [FaceLandmarksLib, LandmarkCoreLib],
            finish,
            success_codes=(0, 3),
        )


class FaceLandmarksTest(ScriptedLoadableModuleTest):
    """Self-test inside Slicer (--testing): a photograph through the bundled model."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_BundledModelDetects()

    def test_BundledModelDetects(self) -> None:
        import numpy as np

        rgb = np.random.default_rng(0).integers(0, 255, (1, 200, 160, 3), dtype=np.uint8)
        volume = slicer.util.addVolumeFromArray(rgb, nodeClassName="vtkMRMLVectorVolumeNode")
        logic = FaceLandmarksLogic()
        # Noise holds no face: the detection is flagged, kept here to check the whole path runs.
        node = logic.detect(logic.loadModel(), volume, keepFlagged=True)
        self.assertEqual(node.GetNumberOfControlPoints(), 68)
        self.delayDisplay("Test passed")
