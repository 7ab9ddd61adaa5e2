"""KneeLandmarksLogic: KNEEL radiograph landmarks on the nodes of a MRML scene; no Qt."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from LandmarkCoreLib.errors import InputError
from LandmarkSlicerLib.detector import MODEL_FILE, DetectorInputs, DetectorLogic

MODEL_SOURCES = ("bundled cephalometric", MODEL_FILE, "KNEEL snapshot")


@dataclass
class KneeInputs(DetectorInputs):
    """A radiograph and a model: bundled, a model file, or KNEEL snapshot folders imported into one."""

    modelSource: str = MODEL_SOURCES[0]
    roiSnapshotFolder: Path | None = None
    landmarkSnapshotFolder: Path | None = None


class KneeLandmarksLogic(DetectorLogic):
    """:meth:`loadModel` then :meth:`detect` (in-process), or :meth:`startBatchDetection` (the CLI)."""

    moduleName = "KneeLandmarks"
    LIB = "KneeLandmarksLib"
    MODEL_CLASS = "KneeModel"
    MODEL_SOURCES = MODEL_SOURCES

    def getParameterNode(self):
        from .parameters import KneeLandmarksParameterNode

        return KneeLandmarksParameterNode(self.parameterNodeMRML())

    def imageSuffixes(self):
        from KneeLandmarksLib.data import IMAGE_SUFFIXES

        return IMAGE_SUFFIXES

    def prepareModelFile(self, inputs: KneeInputs, path: Path) -> None:
        """For a KNEEL snapshot source: import the two snapshot folders into ``path``."""
        if inputs.modelSource != "KNEEL snapshot":
            return
        from KneeLandmarksLib.kneel_import import import_kneel_snapshots

        for folder, what in (
            (inputs.roiSnapshotFolder, "KNEEL ROI snapshot folder"),
            (inputs.landmarkSnapshotFolder, "KNEEL landmark snapshot folder"),
        ):
            if folder is None or not Path(folder).is_dir():
                raise InputError(what, f"'{folder}' is not a folder")
        import_kneel_snapshots(inputs.roiSnapshotFolder, inputs.landmarkSnapshotFolder, path)

    def detectImage(self, model: Any, image: Any, inputs: KneeInputs, notice=None):
        from KneeLandmarksLib.pipeline import detect_landmarks

        return detect_landmarks(model, image, notice=notice)

    @staticmethod
    def describeModel(model) -> str:
        names = model.landmark_names
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        return f"{model.preset.name}: {len(names)} landmarks ({shown}); {model.stages_description}"
