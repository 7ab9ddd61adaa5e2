"""What the two 2D detector modules (KneeLandmarks, FaceLandmarks) share: model-source dispatch,
detection on a photograph/radiograph node, background batch detection and evaluation. No Qt.

A module's Logic derives from :class:`DetectorLogic` and supplies only what is its own: its model
class, its bundled model, its image suffixes and the Lib call of :meth:`DetectorLogic.detectImage`.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import slicer
from LandmarkCoreLib.errors import InputError
from LandmarkCoreLib.landmarks import LandmarkSet

from . import scene as scene_helpers
from . import tasks
from .logic import SceneLogic
from .mrml_bridge import volume_node_to_image
from .scene import require_node, require_path

BUNDLED = "bundled"
MODEL_FILE = "model file"


@dataclass
class DetectorInputs:
    """The selections every 2D detector module has (its parameter node's common fields)."""

    inputVolume: Any = None
    modelSource: str = BUNDLED
    modelPath: Path | None = None
    outputNode: Any = None
    batchInputFolder: Path | None = None
    batchOutputFolder: Path | None = None
    batchWorkers: int = 0  # > 0: the batch runs on a local Dask cluster of that many processes

    @classmethod
    def fromParameterNode(cls, parameterNode: Any) -> DetectorInputs:
        """The dataclass's fields from the parameter node's fields of the same names."""
        from dataclasses import fields

        names = {"outputNode": "outputLandmarks"}
        values = {f.name: names.get(f.name, f.name) for f in fields(cls)}
        known = parameterNode.allParameters
        return cls(**{field: getattr(parameterNode, name) for field, name in values.items() if name in known})


class DetectorParameterFields:
    """The parameter-node fields of every 2D detector module; a module's parameter node derives from it.

    Node fields are Optional (typing.Optional/Union: Slicer's wrapper recognises those): an unset node
    is written as None, which a Union without None refuses ("Unable to write value 'None'"). A module
    adds ``batchWorkers: BatchWorkers = 0`` (``parameters.batch_workers_annotation()``; it needs
    Slicer's wrapper, which this Qt-free file does not import).
    """

    inputVolume: Optional[Union[slicer.vtkMRMLScalarVolumeNode, slicer.vtkMRMLVectorVolumeNode]]  # noqa: UP007, UP045
    modelPath: Path = Path()
    outputLandmarks: Optional[slicer.vtkMRMLMarkupsFiducialNode]  # noqa: UP045
    batchInputFolder: Path = Path()
    batchOutputFolder: Path = Path()
    detectedLandmarks: Optional[slicer.vtkMRMLMarkupsFiducialNode]  # noqa: UP045
    groundTruthLandmarks: Optional[slicer.vtkMRMLMarkupsFiducialNode]  # noqa: UP045
    errorTable: Optional[slicer.vtkMRMLTableNode]  # noqa: UP045


class DetectorLogic(SceneLogic):
    """Load a model (bundled or file), detect on one 2D image node, or on a folder in the background."""

    #: The module's Lib package: its ``pipeline`` has ``MODEL_CLASS`` and ``default_model_path()``,
    #: its ``cli`` is the background job.
    LIB = ""
    MODEL_CLASS = ""
    #: Model sources in GUI order; the first is the bundled model.
    MODEL_SOURCES: Sequence[str] = (BUNDLED, MODEL_FILE)

    def __init__(self, scene: Any = None) -> None:
        super().__init__(scene)
        self.model = None
        self.modelPath: Path | None = None

    def _pipeline(self) -> Any:
        return importlib.import_module(f"{self.LIB}.pipeline")  # lazily: it needs torch

    def libPackages(self) -> list:
        """The imported packages the CLI child needs on its path."""
        import LandmarkCoreLib

        return [importlib.import_module(self.LIB), LandmarkCoreLib]

    # -- what a module supplies -------------------------------------------------------------
    def imageSuffixes(self) -> Sequence[str]:
        raise NotImplementedError

    def detectImage(self, model: Any, image: Any, inputs: DetectorInputs, notice=None) -> LandmarkSet:
        """The Lib's detection on a 2D SimpleITK image (LPS)."""
        raise NotImplementedError

    def detectEveryObject(
        self, model: Any, image: Any, inputs: DetectorInputs, notice=None
    ) -> list[LandmarkSet]:
        """One landmark set per object in the image (e.g. every face of a group photograph), the main one
        first; a module with one object per image leaves this as :meth:`detectImage`."""
        return [self.detectImage(model, image, inputs, notice)]

    def prepareModelFile(self, inputs: DetectorInputs, path: Path) -> None:
        """Make ``path`` hold the model before it is loaded (e.g. import a foreign snapshot)."""

    # -- shared -----------------------------------------------------------------------------
    def loadModel(self, inputs: DetectorInputs) -> Any:
        """The bundled model or a model file (ModelFileError for a foreign or corrupt file)."""
        if inputs.modelSource not in self.MODEL_SOURCES:
            raise InputError(
                "model source", f"'{inputs.modelSource}' is not one of {', '.join(self.MODEL_SOURCES)}"
            )
        if inputs.modelSource == self.MODEL_SOURCES[0]:
            path = self._pipeline().default_model_path()
        else:
            path = require_path(inputs.modelPath, "model file")
        self.prepareModelFile(inputs, path)
        self.model = getattr(self._pipeline(), self.MODEL_CLASS).load(path)
        self.modelPath = Path(path)
        return self.model

    def detect(self, inputs: DetectorInputs, model: Any = None, notice=None) -> Any:
        """Landmarks on the 2D image ``inputs.inputVolume``, on its slice plane; the markups node (the
        main object's; every further object gets its own new node, listed by :meth:`detectEvery`)."""
        return self.detectEvery(inputs, model, notice)[0]

    def detectEvery(self, inputs: DetectorInputs, model: Any = None, notice=None) -> list:
        """One markups node per object: the main one in ``inputs.outputNode`` (or a new node), each
        further one in a new node named after it ("photo landmarks (2)", ...)."""
        model = model if model is not None else self.model
        require_node(model, "model")
        require_node(inputs.inputVolume, "image")
        image = volume_node_to_image(inputs.inputVolume, dimension=2)
        main, *others = self.detectEveryObject(model, image, inputs, notice)
        nodes = [scene_helpers.landmarks_into_node(main, inputs.inputVolume, inputs.outputNode)]
        for number, landmarks in enumerate(others, start=2):
            name = f"{nodes[0].GetName()} ({number})"
            nodes.append(scene_helpers.landmarks_into_node(landmarks, inputs.inputVolume, name=name))
        return nodes

    def startBatchDetection(self, inputs: DetectorInputs) -> tasks.BackgroundTask:
        """Detect on every image of ``inputs.batchInputFolder`` with the loaded model, in a child process.

        With ``batchWorkers`` > 0 the CLI runs the images on a local Dask cluster of that many worker
        processes. The task's result is a :class:`~LandmarkSlicerLib.tasks.BatchSummary` (written; failed,
        with the reasons of the CLI's batch log).
        """
        if self.modelPath is None:
            raise InputError("model", "load a model first")
        suffixes = self.imageSuffixes()
        images = scene_helpers.image_files(require_path(inputs.batchInputFolder, "input folder"), suffixes)
        outputFolder = require_path(inputs.batchOutputFolder, "output folder")
        return tasks.start_batch_task(
            f"{self.LIB}.cli",
            ["-m", self.modelPath, *images],
            outputFolder,
            inputs.batchWorkers,
            self.libPackages(),
        )

    def evaluate(self, detectedNode: Any, truthNode: Any, tableNode: Any = None) -> tuple[Any, float]:
        """(error table node, mean radial error in mm) of detected against ground-truth landmarks."""
        return scene_helpers.evaluate_markups(detectedNode, truthNode, tableNode)

    def loadImage(self, path: Any) -> Any:
        """One image file as a volume node of this scene (a numbered image stays one image)."""
        return scene_helpers.load_image_node(path, self.scene)
