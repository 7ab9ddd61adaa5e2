"""The OneShotLandmarks parameter node (saved with the scene), on Slicer's parameterNodeWrapper.

The training fields are derived from ``TrainingConfig``'s settings declaration (``workingSpacingMm`` is
``working_spacing_mm`` with its type, default and range); the rest are the module's own selections.
"""

from __future__ import annotations

import pathlib
from typing import Annotated, Optional

from LandmarkSlicerLib.parameters import batch_workers_annotation, setting_fields
from OneShotLandmarksLib.config import TrainingConfig
from slicer import (
    vtkMRMLMarkupsFiducialNode,
    vtkMRMLScalarVolumeNode,
    vtkMRMLSegmentationNode,
    vtkMRMLTableNode,
)
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper

#: Detection methods of OneShotLandmarksLib.pipeline (imported lazily there: it needs torch).
METHODS = ("oneshot", "registration")

# Node fields are Optional: Slicer's wrapper writes None as the default of an unset node.
_SELECTIONS = {
    "referenceVolume": (Optional[vtkMRMLScalarVolumeNode], None),  # noqa: UP045
    "referenceLandmarks": (Optional[vtkMRMLMarkupsFiducialNode], None),  # noqa: UP045
    "referenceSegmentation": (Optional[vtkMRMLSegmentationNode], None),  # noqa: UP045
    "referenceSegmentID": (str, ""),
    "validationVolume": (Optional[vtkMRMLScalarVolumeNode], None),  # noqa: UP045
    "validationSegmentation": (Optional[vtkMRMLSegmentationNode], None),  # noqa: UP045
    "validationSegmentID": (str, ""),
    "modelPath": (pathlib.Path, pathlib.Path()),
    "targetVolume": (Optional[vtkMRMLScalarVolumeNode], None),  # noqa: UP045
    "method": (Annotated[str, Choice(list(METHODS))], METHODS[0]),
    "batchInputFolder": (pathlib.Path, pathlib.Path()),
    "batchOutputFolder": (pathlib.Path, pathlib.Path()),
    "batchWorkers": (batch_workers_annotation(), 0),
    "detectedLandmarks": (Optional[vtkMRMLMarkupsFiducialNode], None),  # noqa: UP045
    "groundTruthLandmarks": (Optional[vtkMRMLMarkupsFiducialNode], None),  # noqa: UP045
    "errorTable": (Optional[vtkMRMLTableNode], None),  # noqa: UP045
}


def _parameter_node_class() -> type:
    annotations, defaults = setting_fields(TrainingConfig)
    for name, (annotation, default) in _SELECTIONS.items():
        annotations[name] = annotation
        defaults[name] = default
    namespace = {
        "__annotations__": annotations,
        "__module__": __name__,
        "__doc__": "The module's state. Segment selections are kept as node + segment ID.",
        **{name: value for name, value in defaults.items() if value is not None},
    }
    return parameterNodeWrapper(type("OneShotLandmarksParameterNode", (), namespace))


OneShotLandmarksParameterNode = _parameter_node_class()
