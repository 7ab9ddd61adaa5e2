"""Face localisation for detection without a box: a package-shipped face detector proposes boxes, the
landmark stage then runs once per box.

Two detectors were measured side by side (``benchmarks/face_benchmark.py --localisers``):

* ``opencv-haar`` (default): OpenCV's frontal-face Haar cascade, the XML file that the
  ``opencv-python-headless`` wheel ships (Apache-2.0);
* ``dlib-hog``: dlib's HOG + linear SVM frontal-face detector, compiled into the ``dlib-bin`` wheel
  (Boost licence).

Each detector's box is mapped onto the landmark stage's training geometry (landmark box + 10 %) by a
:class:`BoxCalibration` fitted on the training identities; the landmark stage is trained with the scale
and shift jitter that this mapping leaves (see :data:`data.LOCALISER_JITTER`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from LandmarkCoreLib.errors import InputError

Box = tuple[float, float, float, float]
#: Detection attempts, in order, until one finds a face: (shorter side the image is scaled to, Haar
#: minimum neighbours; HOG ignores the second).  Haar at 128 instead of 160 px: 11.2 instead of 13.5 ms
#: of CPU per frame, faces found on 876 instead of 881 of 885 'fit' frames, false extra boxes on half as
#: many frames.  The retry at 160 px with 3 instead of 5 neighbours also finds the 2 of 414 validation
#: faces that 128 and 160 px with 5 missed (both then within 0.10 NME); the no-face rule drops the extra
#: false boxes it brings.  dlib's HOG finds no face under 80 px, so it keeps 160.
DETECTION_ATTEMPTS = {"opencv-haar": ((128, 5), (160, 3)), "dlib-hog": ((160, 0),)}
#: Haar's scale step between searched face sizes.
HAAR_SCALE_FACTOR = 1.1
#: Smallest face searched for, as a fraction of the scaled shorter side.
MIN_FACE_FRACTION = 0.2
INSTALL_HINT = {"opencv-haar": "opencv-python-headless", "dlib-hog": "dlib-bin"}


@dataclass(frozen=True)
class BoxCalibration:
    """Detector box (side s, centre c) -> landmark box: centre c + (dx, dy) s, size (w, h) s."""

    dx: float
    dy: float
    w: float
    h: float

    def apply(self, box: Box) -> Box:
        x0, y0, x1, y1 = box
        side = ((x1 - x0) + (y1 - y0)) / 2.0
        cx, cy = (x0 + x1) / 2.0 + self.dx * side, (y0 + y1) / 2.0 + self.dy * side
        return (
            cx - self.w * side / 2,
            cy - self.h * side / 2,
            cx + self.w * side / 2,
            cy + self.h * side / 2,
        )


def fit_calibration(detected: np.ndarray, truth: np.ndarray) -> BoxCalibration:
    """Median mapping of detector boxes (N, 4) onto the true landmark boxes (N, 4)."""
    side = ((detected[:, 2] - detected[:, 0]) + (detected[:, 3] - detected[:, 1])) / 2.0
    centre_d = (detected[:, :2] + detected[:, 2:]) / 2.0
    centre_t = (truth[:, :2] + truth[:, 2:]) / 2.0
    offset = np.median((centre_t - centre_d) / side[:, None], axis=0)
    size = np.median((truth[:, 2:] - truth[:, :2]) / side[:, None], axis=0)
    return BoxCalibration(*(round(float(v), 4) for v in (*offset, *size)))


#: Fitted by ``benchmarks/face_benchmark.py --calibrate`` on the 'fit' identities (never validation).
CALIBRATION: dict[str, BoxCalibration] = {
    "opencv-haar": BoxCalibration(-0.0031, 0.1565, 1.0268, 0.9894),
    "dlib-hog": BoxCalibration(0.0016, 0.1004, 1.1082, 1.0778),
}
LOCALISERS = tuple(CALIBRATION)
DEFAULT_LOCALISER = "opencv-haar"


def _scaled(rgb: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """uint8 (H, W, 3) copy whose shorter side is ``side``, and the scale factor applied."""
    import cv2

    height, width = rgb.shape[:2]
    scale = side / min(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    uint8 = np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.resize(uint8, size, interpolation=interpolation), scale


def _haar_boxes(scaled: np.ndarray, neighbours: int) -> list[Box]:
    import cv2

    cascade = _haar_cascade()
    grey = cv2.cvtColor(scaled, cv2.COLOR_RGB2GRAY)
    smallest = int(MIN_FACE_FRACTION * min(scaled.shape[:2]))
    found = cascade.detectMultiScale(grey, HAAR_SCALE_FACTOR, neighbours, minSize=(smallest, smallest))
    return [(float(x), float(y), float(x + w), float(y + h)) for x, y, w, h in found]


def _hog_boxes(scaled: np.ndarray, neighbours: int) -> list[Box]:
    return [(float(r.left()), float(r.top()), float(r.right()), float(r.bottom())) for r in _hog()(scaled, 0)]


@functools.cache
def _hog():
    import dlib

    return dlib.get_frontal_face_detector()


@functools.cache
def _haar_cascade():
    import cv2

    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    if cascade.empty():
        raise InputError("OpenCV", "its bundled haarcascade_frontalface_default.xml could not be read")
    return cascade


def detector_boxes(rgb: np.ndarray, localiser: str = DEFAULT_LOCALISER) -> list[Box]:
    """Raw detector boxes in image pixels (x0, y0, x1, y1) for an (H, W, 3) float image in [0, 1]."""
    if localiser not in CALIBRATION:
        raise InputError("face localiser", f"'{localiser}' is not one of {', '.join(LOCALISERS)}")
    detect = _haar_boxes if localiser == "opencv-haar" else _hog_boxes
    boxes: list[Box] = []
    try:
        for side, neighbours in DETECTION_ATTEMPTS[localiser]:
            scaled, scale = _scaled(rgb, side)
            boxes = [tuple(v / scale for v in box) for box in detect(scaled, neighbours)]
            if boxes:
                break
    except ImportError:
        raise InputError(
            f"face localiser '{localiser}'",
            f"needs the Python package {INSTALL_HINT[localiser]} (pip install {INSTALL_HINT[localiser]}); "
            "or give the face box",
        ) from None
    return boxes


def face_boxes(rgb: np.ndarray, localiser: str = DEFAULT_LOCALISER) -> list[Box]:
    """Face boxes in the landmark stage's geometry (pixels), largest first."""
    boxes = [CALIBRATION[localiser].apply(box) for box in detector_boxes(rgb, localiser)]
    return sorted(boxes, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))
