"""FaceLandmarksLogic: 68-point facial landmarks on the nodes of a MRML scene; no Qt."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from LandmarkCoreLib.errors import InputError
from LandmarkCoreLib.images import IMAGE_SUFFIXES_2D
from LandmarkSlicerLib.detector import DetectorInputs, DetectorLogic

FACE_REGIONS = ("whole image", "ROI")


@dataclass
class FaceInputs(DetectorInputs):
    """A photograph, its face region (whole image or a markups ROI) and a model."""

    faceRegion: str = FACE_REGIONS[0]
    faceRoi: Any = None
    keepFlagged: bool = False  # keep a detection whose heatmaps say "no face" (else InputError)

    @property
    def roi(self) -> Any:
        return self.faceRoi if self.faceRegion == "ROI" else None


class FaceLandmarksLogic(DetectorLogic):
    """:meth:`loadModel` then :meth:`detect` (milliseconds per face), or :meth:`startBatchDetection`."""

    moduleName = "FaceLandmarks"
    LIB = "FaceLandmarksLib"
    MODEL_CLASS = "FaceModel"

    def getParameterNode(self):
        from .parameters import FaceLandmarksParameterNode

        return FaceLandmarksParameterNode(self.parameterNodeMRML())

    def imageSuffixes(self):
        return IMAGE_SUFFIXES_2D  # what the CLI reads

    def describeModel(self, model) -> str:
        return f"68-point face model from {self.modelPath.name if self.modelPath else 'memory'}"

    @staticmethod
    def faceBox(roiNode) -> tuple[float, float, float, float]:
        """The ROI's extent in the photograph's physical space (LPS mm): (x0, y0, x1, y1)."""
        bounds = [0.0] * 6
        roiNode.GetRASBounds(bounds)
        if bounds[1] <= bounds[0] or bounds[3] <= bounds[2]:
            raise InputError(f"face ROI '{roiNode.GetName()}'", "is empty; draw it around the face")
        return -bounds[1], -bounds[3], -bounds[0], -bounds[2]  # LPS x = -R, y = -A

    def detectImage(self, model: Any, image: Any, inputs: FaceInputs, notice=None):
        """The landmarks of the largest face in the face region (see :meth:`detectEveryObject`)."""
        return self.detectEveryObject(model, image, inputs, notice)[0]

    def detectEveryObject(self, model: Any, image: Any, inputs: FaceInputs, notice=None) -> list:
        """The 68 landmarks of every face in the face region, largest first (the ROI's one face when
        given); InputError when the heatmaps say there is no face (nothing is added to the scene) unless
        ``inputs.keepFlagged``."""
        from FaceLandmarksLib.pipeline import detect_every_face

        what = f"photograph '{inputs.inputVolume.GetName()}'"
        box = self.faceBox(inputs.roi) if inputs.roi is not None else None
        faces = detect_every_face(model, image, box, what=what)
        if faces[0].flagged_no_face and not inputs.keepFlagged:
            raise InputError(
                what,
                f"no face found in the face region (mean heatmap peak "
                f"{faces[0].peak_confidence.mean():.2f}); draw a face ROI around the face",
            )
        return [face.landmarks for face in faces]
