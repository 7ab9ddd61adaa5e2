"""KneeLandmarksWidget: the shared detector Widget with the KNEEL snapshot fields."""

from __future__ import annotations

from LandmarkSlicerLib.widgets import DetectorWidget

from .logic import KneeInputs, KneeLandmarksLogic


class KneeLandmarksWidget(DetectorWidget):
    logicClass = KneeLandmarksLogic
    inputsClass = KneeInputs

    def updateModuleGui(self, parameterNode) -> None:
        snapshot = parameterNode.modelSource == "KNEEL snapshot"
        self.ui.roiSnapshotPathLineEdit.enabled = snapshot
        self.ui.landmarkSnapshotPathLineEdit.enabled = snapshot
