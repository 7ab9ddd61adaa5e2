"""FaceLandmarksWidget: the shared detector Widget with the face-region selection."""

from __future__ import annotations

from LandmarkSlicerLib.widgets import DetectorWidget

from .logic import FaceInputs, FaceLandmarksLogic


class FaceLandmarksWidget(DetectorWidget):
    logicClass = FaceLandmarksLogic
    inputsClass = FaceInputs

    def updateModuleGui(self, parameterNode) -> None:
        self.ui.faceRoiSelector.enabled = parameterNode.faceRegion == "ROI"

    def canDetect(self, parameterNode) -> bool:
        return parameterNode.faceRegion != "ROI" or bool(parameterNode.faceRoi)
