"""The FaceLandmarks parameter node (saved with the scene), on Slicer's parameterNodeWrapper."""

from __future__ import annotations

from typing import Annotated, Optional

from LandmarkSlicerLib.detector import BUNDLED, MODEL_FILE, DetectorParameterFields
from LandmarkSlicerLib.parameters import batch_workers_annotation
from slicer import vtkMRMLMarkupsROINode
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper

from .logic import FACE_REGIONS

BatchWorkers = batch_workers_annotation()


@parameterNodeWrapper
class FaceLandmarksParameterNode(DetectorParameterFields):
    batchWorkers: BatchWorkers = 0
    faceRegion: Annotated[str, Choice(list(FACE_REGIONS))] = FACE_REGIONS[0]
    faceRoi: Optional[vtkMRMLMarkupsROINode]  # noqa: UP045 -- None when unset, see DetectorParameterFields
    modelSource: Annotated[str, Choice([BUNDLED, MODEL_FILE])] = BUNDLED
