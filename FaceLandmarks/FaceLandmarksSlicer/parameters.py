"""The FaceLandmarks parameter node (saved with the scene), on Slicer's parameterNodeWrapper."""

from __future__ import annotations

import pathlib
from typing import Annotated, Optional, Union

from LandmarkSlicerLib.detector import BUNDLED, MODEL_FILE
from slicer import (
    vtkMRMLMarkupsFiducialNode,
    vtkMRMLMarkupsROINode,
    vtkMRMLScalarVolumeNode,
    vtkMRMLTableNode,
    vtkMRMLVectorVolumeNode,
)
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper

from .logic import FACE_REGIONS


# Node fields are Optional (typing.Optional/Union: Slicer's wrapper recognises those): an unset node
# is written as None, which a Union without None refuses ("Unable to write value 'None'").
@parameterNodeWrapper
class FaceLandmarksParameterNode:
    inputVolume: Optional[Union[vtkMRMLScalarVolumeNode, vtkMRMLVectorVolumeNode]]  # noqa: UP007, UP045
    faceRegion: Annotated[str, Choice(list(FACE_REGIONS))] = FACE_REGIONS[0]
    faceRoi: Optional[vtkMRMLMarkupsROINode]  # noqa: UP045
    modelSource: Annotated[str, Choice([BUNDLED, MODEL_FILE])] = BUNDLED
    modelPath: pathlib.Path = pathlib.Path()
    outputLandmarks: Optional[vtkMRMLMarkupsFiducialNode]  # noqa: UP045
    batchInputFolder: pathlib.Path = pathlib.Path()
    batchOutputFolder: pathlib.Path = pathlib.Path()
    detectedLandmarks: Optional[vtkMRMLMarkupsFiducialNode]  # noqa: UP045
    groundTruthLandmarks: Optional[vtkMRMLMarkupsFiducialNode]  # noqa: UP045
    errorTable: Optional[vtkMRMLTableNode]  # noqa: UP045
