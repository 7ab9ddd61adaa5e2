"""The KneeLandmarks parameter node (saved with the scene), on Slicer's parameterNodeWrapper."""

from __future__ import annotations

import pathlib
from typing import Annotated

from LandmarkSlicerLib.detector import DetectorParameterFields
from LandmarkSlicerLib.parameters import batch_workers_annotation
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper

from .logic import MODEL_SOURCES

BatchWorkers = batch_workers_annotation()


@parameterNodeWrapper
class KneeLandmarksParameterNode(DetectorParameterFields):
    batchWorkers: BatchWorkers = 0
    modelSource: Annotated[str, Choice(list(MODEL_SOURCES))] = MODEL_SOURCES[0]
    roiSnapshotFolder: pathlib.Path = pathlib.Path()
    landmarkSnapshotFolder: pathlib.Path = pathlib.Path()
