"""OneShotLandmarksLogic: one-shot 3D landmark detection on the nodes of a MRML scene; no Qt.

In-process (Python console, tests, a web front end): :meth:`train`, :meth:`detect`. In the background
(the GUI): :meth:`startTraining`, :meth:`startDetection`, :meth:`startBatchDetection` return a
``BackgroundTask`` running the ``oneshot-landmarks`` CLI on files written to a temporary folder. Every
input is converted (and so checked) before anything starts or any node is created, so a typed error
(``InputError``, ``ModelFileError``, ...) leaves the scene unchanged. torch is imported lazily.
"""

from __future__ import annotations

import logging
import pathlib
from dataclasses import dataclass, field
from typing import Any

import vtk
from LandmarkCoreLib.errors import InputError
from LandmarkCoreLib.images import IMAGE_SUFFIXES_3D
from LandmarkCoreLib.settings import setting_arguments, settings_to_dict, validate_settings
from LandmarkSlicerLib import scene as scene_helpers
from LandmarkSlicerLib import tasks
from LandmarkSlicerLib.logic import SceneLogic
from LandmarkSlicerLib.mrml_bridge import (
    image_to_volume_node,
    markups_node_to_landmarks,
    segment_to_mask,
    volume_node_to_image,
)
from LandmarkSlicerLib.scene import require_node, require_path
from OneShotLandmarksLib.config import TrainingConfig

CLI_MODULE = "OneShotLandmarksLib.cli"
#: markups-node attribute holding a detection's warnings (a result written, but to be checked)
WARNINGS_ATTRIBUTE = "OneShotLandmarks.warnings"


def _setting_text(value: Any) -> str:
    """A setting's value as the Model section shows it (lists space-separated, numbers short)."""
    items = value if isinstance(value, list) else [value]
    return " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in items)


@dataclass
class TrainingInputs:
    """What training needs: reference volume + landmarks + SOI segment, validation volume + SOI."""

    referenceVolume: Any
    referenceLandmarks: Any
    referenceSegmentation: Any
    referenceSegmentID: str
    validationVolume: Any
    validationSegmentation: Any
    validationSegmentID: str
    settings: TrainingConfig = field(default_factory=TrainingConfig)
    modelPath: pathlib.Path | None = None

    @classmethod
    def fromParameterNode(cls, parameterNode: Any) -> TrainingInputs:
        from LandmarkSlicerLib.parameters import settings_from_parameter_node

        p = parameterNode
        return cls(
            p.referenceVolume,
            p.referenceLandmarks,
            p.referenceSegmentation,
            p.referenceSegmentID,
            p.validationVolume,
            p.validationSegmentation,
            p.validationSegmentID,
            settings_from_parameter_node(TrainingConfig, p),
            p.modelPath if scene_helpers.path_is_set(p.modelPath) else None,
        )


@dataclass
class DetectionInputs:
    """One target volume, or (``inputFolder``/``outputFolder``) every volume of a folder, on
    ``batchWorkers`` local Dask worker processes when > 0."""

    targetVolume: Any = None
    method: str = "oneshot"
    device: str = "auto"
    outputNode: Any = None
    inputFolder: pathlib.Path | None = None
    outputFolder: pathlib.Path | None = None
    batchWorkers: int = 0

    @classmethod
    def fromParameterNode(cls, parameterNode: Any) -> DetectionInputs:
        p = parameterNode
        folders = (p.batchInputFolder, p.batchOutputFolder)
        return cls(p.targetVolume, p.method, p.device, None, *folders, p.batchWorkers)


@dataclass
class TrainingImages:
    """The checked training inputs as the Lib takes them (SimpleITK images, LPS landmarks)."""

    reference: Any
    landmarks: Any
    referenceSoi: Any
    validation: Any
    validationSoi: Any


class OneShotLandmarksLogic(SceneLogic):
    """Computation on MRML nodes of :attr:`scene`, no GUI code."""

    moduleName = "OneShotLandmarks"
    CLI_MODULE = CLI_MODULE

    def __init__(self, scene: Any = None) -> None:
        super().__init__(scene)
        self.model = None
        self.modelPath: pathlib.Path | None = None

    def getParameterNode(self):
        """The typed parameter node (Slicer's parameterNodeWrapper; imported here, it needs Qt)."""
        from .parameters import OneShotLandmarksParameterNode

        return OneShotLandmarksParameterNode(self.parameterNodeMRML())

    # -- inputs -----------------------------------------------------------------------------
    @staticmethod
    def _soiMask(segmentationNode, segmentID: str, volumeNode, what: str):
        require_node(segmentationNode, f"{what} segmentation")
        if not segmentID:
            raise InputError(f"{what} segment", "no segment selected")
        return segment_to_mask(segmentationNode, segmentID, volumeNode)

    def trainingImages(self, inputs: TrainingInputs) -> TrainingImages:
        """The inputs converted and checked (InputError naming the first bad one)."""
        require_node(inputs.referenceVolume, "reference volume")
        require_node(inputs.referenceLandmarks, "reference landmarks")
        require_node(inputs.validationVolume, "validation volume")
        validate_settings(inputs.settings, "training setting")
        return TrainingImages(
            volume_node_to_image(inputs.referenceVolume),
            markups_node_to_landmarks(inputs.referenceLandmarks),
            self._soiMask(
                inputs.referenceSegmentation,
                inputs.referenceSegmentID,
                inputs.referenceVolume,
                "reference SOI",
            ),
            volume_node_to_image(inputs.validationVolume),
            self._soiMask(
                inputs.validationSegmentation,
                inputs.validationSegmentID,
                inputs.validationVolume,
                "validation SOI",
            ),
        )

    def requireModel(self, model=None):
        model = model or self.model
        if model is None:
            raise InputError("model", "no model trained or loaded yet")
        return model

    def createThresholdSoi(self, volumeNode, threshold: float | None = 40.0, name: str | None = None):
        """A segmentation node with one segment 'SOI': voxels >= ``threshold``, largest connected part.

        For micro-CT of bone 40 is a usable structure of interest (the recipe of the mouse data's bone
        masks); ``None`` takes Otsu's threshold and fills the enclosed holes, which gives the head of an
        MRI. Returns
        ``(segmentation node, segment ID)``.
        """
        import slicer
        from OneShotLandmarksLib.soi import threshold_soi

        require_node(volumeNode, "volume to threshold")
        image = volume_node_to_image(volumeNode)
        largest = threshold_soi(image, threshold, what=f"volume '{volumeNode.GetName()}'")
        scene = scene_helpers.scene_of(volumeNode)
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
        segmentation.GetSegmentation().GetNthSegment(0).SetName("SOI")
        return segmentation, segmentation.GetSegmentation().GetNthSegmentID(0)

    # -- in-process ---------------------------------------------------------------------------
    def train(self, inputs: TrainingInputs, progress=None, cancel=None):
        """Train a model on the given nodes (blocking); saved to ``inputs.modelPath`` when given."""
        from LandmarkCoreLib.progress import no_progress
        from OneShotLandmarksLib.pipeline import train_model

        images = self.trainingImages(inputs)
        model = train_model(
            images.reference,
            images.landmarks,
            images.referenceSoi,
            images.validation,
            images.validationSoi,
            config=inputs.settings,
            progress=progress or no_progress,
            cancel=cancel,
        )
        if inputs.modelPath is not None:
            model.save(inputs.modelPath)
            self.modelPath = pathlib.Path(inputs.modelPath)
        self.model = model
        return model

    def detect(self, inputs: DetectionInputs, model=None, progress=None, cancel=None):
        """Detect the model's landmarks on ``inputs.targetVolume``; returns the markups node (RAS)."""
        from LandmarkCoreLib.progress import no_progress
        from OneShotLandmarksLib.pipeline import detect_landmarks

        model = self.requireModel(model)
        require_node(inputs.targetVolume, "target volume")
        result = detect_landmarks(
            model,
            volume_node_to_image(inputs.targetVolume),
            method=inputs.method,
            progress=progress or no_progress,
            cancel=cancel,
            device=inputs.device,
        )
        node = scene_helpers.landmarks_into_node(result.landmarks, inputs.targetVolume, inputs.outputNode)
        node.RemoveAttribute(WARNINGS_ATTRIBUTE)  # a reused node keeps no earlier warning
        if result.warnings:  # written, but to be checked (e.g. handedness not confirmed)
            node.SetAttribute(WARNINGS_ATTRIBUTE, "; ".join(result.warnings))
            logging.warning("%s: %s", node.GetName(), "; ".join(result.warnings))
        return node

    def evaluate(self, detectedNode, truthNode, tableNode=None):
        """(error table node, mean radial error in mm) of detected against ground-truth landmarks."""
        return scene_helpers.evaluate_markups(detectedNode, truthNode, tableNode)

    # -- model files --------------------------------------------------------------------------
    def loadModel(self, path):
        """Load a one-shot model file (ModelFileError for a corrupt file or another module's model)."""
        from OneShotLandmarksLib.model import OneShotModel

        path = require_path(path, "model file")
        self.model = OneShotModel.load(path)
        self.modelPath = path
        return self.model

    @staticmethod
    def derivedSettings(model) -> dict[str, Any]:
        """The settings (training and detection) that ``model`` derived from its SOI, as its file
        records them: ``{setting name: value}``, empty for a model whose settings were all given."""
        derivation = getattr(model, "derivation", {})  # absent from models of older releases
        values = {**settings_to_dict(model.training), **settings_to_dict(model.detection)}
        return {name: values[name] for name in derivation.get("derived", ())}

    @classmethod
    def describeModel(cls, model) -> str:
        """What a model was trained on, for the Model section."""
        summary = model.training_summary
        loss = summary.get("best_validation_loss")
        labels = model.landmarks.labels
        lines = [
            f"{len(model.landmarks)} landmarks from '{model.landmarks.name or 'reference'}' "
            f"({', '.join(labels[:6])}{', ...' if len(labels) > 6 else ''})",
            f"working spacing {model.training.working_spacing_mm:g} mm, cube {model.cube_size} voxels",
            f"{summary.get('epochs', '?')} epochs, best validation loss "
            + (f"{loss:.4f} (epoch {summary.get('best_epoch')})" if loss is not None else "unknown"),
        ]
        derived = cls.derivedSettings(model)
        if derived:
            scale = model.derivation
            lines.append(
                f"derived from the SOI (radius {scale['soi_radius_mm']:.3g} mm, voxels "
                f"{scale['voxel_mm']:.3g} mm): "
                + ", ".join(f"{name} {_setting_text(value)}" for name, value in derived.items())
            )
        cost = getattr(model, "derivation", {}).get("cost")
        if cost:
            lines.append(
                f"estimated before training: {cost['training_bytes'] / 2**30:.2f} GB, "
                f"{cost['epoch_seconds']:.0f} s per epoch; detection {cost['detection_bytes'] / 2**30:.2f} GB"
            )
        return "\n".join(lines)

    # -- background (CLI child process) -------------------------------------------------------
    @staticmethod
    def _packages() -> list:
        import LandmarkCoreLib
        import OneShotLandmarksLib

        return [OneShotLandmarksLib, LandmarkCoreLib]

    def startTraining(self, inputs: TrainingInputs) -> tasks.BackgroundTask:
        """Write the inputs to a temporary folder and train with the CLI in a child process.

        Every training setting goes to the child as the CLI flag derived from its declaration. The
        task's result is the trained model (also loaded into this Logic). Cancel keeps the CLI's last
        checkpoint beside ``modelPath``; training again resumes from it.
        """
        from LandmarkCoreLib.images import write_image
        from LandmarkCoreLib.landmarks import write_landmarks

        modelPath = require_path(inputs.modelPath, "model file")
        images = self.trainingImages(inputs)
        folder = tasks.work_folder("oneshot-train")
        work = pathlib.Path(folder.name)
        files = {
            "reference": (work / "reference.nrrd", images.reference),
            "reference-soi": (work / "reference_soi.nrrd", images.referenceSoi),
            "validation": (work / "validation.nrrd", images.validation),
            "validation-soi": (work / "validation_soi.nrrd", images.validationSoi),
        }
        for path, image in files.values():
            write_image(path, image)
        write_landmarks(work / "reference.mrk.json", images.landmarks)
        arguments = [
            *setting_arguments(inputs.settings),
            *(item for key, (path, _) in files.items() for item in (f"--{key}", path)),
            *("--reference-landmarks", work / "reference.mrk.json", "-o", modelPath),
        ]
        return tasks.start_cli_task(
            CLI_MODULE,
            "train",
            arguments,
            self._packages(),
            finish=lambda result: self.loadModel(modelPath),
            folder=folder,
        )

    def startDetection(self, inputs: DetectionInputs) -> tasks.BackgroundTask:
        """Detect on one target volume in a child process; the task's result is the markups node."""
        from LandmarkCoreLib.images import write_image
        from LandmarkCoreLib.landmarks import read_landmarks

        self.requireModel()
        if self.modelPath is None:
            raise InputError("model", "save the model to a file first (background detection reads the file)")
        require_node(inputs.targetVolume, "target volume")
        folder = tasks.work_folder("oneshot-detect")
        work = pathlib.Path(folder.name)
        write_image(work / "target.nrrd", volume_node_to_image(inputs.targetVolume))

        def finish(result):
            landmarks = read_landmarks(work / "out" / "target.mrk.json", "detected landmarks")
            return scene_helpers.landmarks_into_node(landmarks, inputs.targetVolume, inputs.outputNode)

        arguments = [*self._detectionFlags(inputs), "-o", work / "out", work / "target.nrrd"]
        return tasks.start_cli_task(CLI_MODULE, "detect", arguments, self._packages(), finish, folder=folder)

    def _detectionFlags(self, inputs: DetectionInputs) -> list:
        return ["-m", self.modelPath, "--method", inputs.method, "--device", inputs.device]

    def startBatchDetection(self, inputs: DetectionInputs, modelPath=None) -> tasks.BackgroundTask:
        """Detect on every volume of ``inputs.inputFolder`` in a child process, into ``outputFolder``.

        The task's result is a :class:`~LandmarkSlicerLib.tasks.BatchSummary`: results written and
        the targets that failed, with the reasons the CLI's batch log records.
        """
        self.loadModel(modelPath if modelPath is not None else self.modelPath)  # a foreign file fails here
        # refuses a missing folder or one without volumes before the child process starts
        scene_helpers.image_files(require_path(inputs.inputFolder, "input folder"), IMAGE_SUFFIXES_3D)
        outputFolder = require_path(inputs.outputFolder, "output folder")
        return tasks.start_batch_task(
            CLI_MODULE,
            [*self._detectionFlags(inputs), inputs.inputFolder],
            outputFolder,
            inputs.batchWorkers,
            self._packages(),
        )
