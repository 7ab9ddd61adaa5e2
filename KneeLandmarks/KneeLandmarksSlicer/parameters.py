"""The KneeLandmarks parameter node (saved with the scene), on Slicer's parameterNodeWrapper."""

from __future__ import annotations

import pathlib
from typing import Annotated, Optional, Union

from slicer import (
    vtkMRMLMarkupsFiducialNode,
    vtkMRMLScalarVolumeNode,
    vtkMRMLTableNode,
    vtkMRMLVectorVolumeNode,
)
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper

from .logic import MODEL_SOURCES


# Node fields are Optional (typing.Optional/Union: Slicer's wrapper recognises those): an unset node
# is written as None, which a Union without None refuses ("Unable to write value 'None'").
@parameterNodeWrapper
class KneeLandmarksParameterNode:
    inputVolume: Optional[Union[vtkMRMLScalarVolumeNode, vtkMRMLVectorVolumeNode]]  # noqa: UP007, UP045
    modelSource: Annotated[str, Choice(list(MODEL_SOURCES))] = MODEL_SOURCES[0]
    modelPath: pathlib.Path = pathlib.Path()
    roiSnapshotFolder: pathlib.Path = pathlib.Path()
    landmarkSnapshotFolder: pathlib.Path = pathlib.Path()
    outputLandmarks: Optional[vtkMRMLMarkupsFiducialNode]  # noqa: UP045
    batchInputFolder: pathlib.Path = pathlib.Path()
    batchOutputFolder: pathlib.Path = pathlib.Path()
    detectedLandmarks: Optional[vtkMRMLMarkupsFiducialNode]  # noqa: UP045
    groundTruthLandmarks: Optional[vtkMRMLMarkupsFiducialNode]  # noqa: UP045
    errorTable: Optional[vtkMRMLTableNode]  # noqa: UP045
