"""Public API of the face engine for the Slicer Logic and the CLI.

    model = FaceModel.load(path or default_model_path())
    faces = detect_faces(model, image)                  # one FaceDetection per face the localiser finds
    faces = detect_every_face(model, image)             # those that show a face (else one, flagged)
    detection = detect_landmarks(model, image, box=(x0, y0, x1, y1) or None)   # one face
    detection.landmarks          # LandmarkSet, 68 points "0".."67", (column, row) physical, 2D
    detection.peak_confidence    # (68,) heatmap peak per point (about 1 on a clear face)
    detection.flagged_no_face    # True when there is no face (detection.reason says why)

``box`` is in the image's physical coordinates (pixels x spacing, as SimpleITK reports them), the face
box of the training geometry: the landmarks' bounding box plus 10 % on each side (see :mod:`data`).
The network looks at the square of side max(width, height) centred on the box.  Without a box the
face localiser (:mod:`localiser`) proposes the boxes; a given box always wins.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from LandmarkCoreLib.errors import InputError, ModelFileError
from LandmarkCoreLib.images import conform_dimension, index_to_physical, physical_to_index
from LandmarkCoreLib.landmarks import LandmarkSet
from LandmarkCoreLib.modelfile import ModelFile, load_model_file
from torch.fx.experimental.optimization import fuse

from .data import (
    FLIP_PERMUTATION,
    box_from_points,
    crop_square,
    from_crop_coordinates,
    normalise,
    resample_square,
)
from .decoder import decode_heatmaps
from .localiser import DEFAULT_LOCALISER, face_boxes
from .losses import soft_argmax
from .methods import build_network
from .training import MODEL_KIND

LABELS = [str(i) for i in range(68)]
#: "No face" rule for a face box (given, or proposed by the localiser): flagged when the mean heatmap peak
#: is low AND the arg-max and soft-argmax of the heatmaps disagree (diffuse or multi-modal heatmaps).
#: Calibrated on the bundled model with every 8th 'fit' identities' whole frame (two passes): real faces
#: mean peak >= 0.78 (1st percentile 0.80), disagreement <= 1.31; the localiser's false boxes beside
#: faces and on background: peak 0.36-0.57, disagreement 3.0-5.1.  Measured on unseen images by
#: ``benchmarks/face_benchmark.py`` (precision / recall of 'no face').
NO_FACE_PEAK = 0.70
NO_FACE_DISAGREEMENT = 2.0


def default_model_path() -> Path:
    return Path(__file__).resolve().parent / "models" / "face_default.pt"


class _Heatmaps(torch.nn.Module):
    """``network.heatmaps`` as a module's forward, for torch.fx."""

    def __init__(self, network: torch.nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return self.network.heatmaps(crops)


@dataclass
class FaceModel:
    network: torch.nn.Module
    config: dict
    path: Path

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> FaceModel:
        """Load a 'face-model' file (default: the bundled model)."""
        path = Path(path) if path is not None else default_model_path()
        model = load_model_file(path, MODEL_KIND)
        return cls.from_model_file(model, path)

    @classmethod
    def from_model_file(cls, model: ModelFile, path: Path = Path("<memory>")) -> FaceModel:
        network = build_network(model.config)
        try:
            network.load_state_dict(model.tensors["state_dict"])
        except RuntimeError as exc:
            raise ModelFileError(f"face model '{path}': weights do not fit its architecture: {exc}") from None
        network.eval()
        return cls(network, model.config, path)

    @property
    def decoding(self) -> str:
        """'soft-argmax' for models trained with the coordinate loss (what they were optimised for),
        else 'taylor' (arg-max + Taylor refinement)."""
        return "soft-argmax" if self.config.get("training", {}).get("coordinate_weight") else "taylor"

    @property
    def input_size(self) -> int:
        return int(self.config["input_size"])

    @functools.cached_property
    def _heatmaps(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The network's heatmaps with each batch norm folded into the convolution before it (torch.fx),
        built on first use: measured 11.8 -> 10.5 ms for a mirrored crop pair on one thread, the same
        heatmaps to 1e-6.  A network without batch norms (a test's stub) runs as it is."""
        if not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in self.network.modules()):
            return self.network.heatmaps
        return fuse(_Heatmaps(self.network).eval())

    def __getstate__(self) -> dict:
        """Pickled (for Dask workers) without the folded copy, which each process rebuilds."""
        return {k: v for k, v in self.__dict__.items() if k != "_heatmaps"}

    @torch.no_grad()
    def predict_crops(self, crops: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Normalised crops (B, 3, S, S) -> points in crop pixels (B, 68, 2), peak values (B, 68)."""
        points, peaks, _ = self.predict_crops_with_spread(crops)
        return points, peaks

    @torch.no_grad()
    def predict_crops_with_spread(
        self, crops: torch.Tensor, mirrored: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """As :meth:`predict_crops`, plus per crop the mean distance (heatmap pixels) between the arg-max
        and the soft-argmax of the heatmaps, which is large when the heatmaps are diffuse.

        With ``mirrored`` each crop is also seen mirrored (one batch); the two answers are averaged, the
        mirrored one with its points relabelled by the 68-point mirror permutation (measured on the
        identity-disjoint validation crops: NME 0.0758 -> 0.0713)."""
        if not mirrored:
            return self._decode(self._heatmaps(crops))
        n = crops.shape[0]
        points, peaks, spread = self._decode(self._heatmaps(torch.cat([crops, crops.flip(-1)])))
        flipped = points[n:, FLIP_PERMUTATION].copy()
        flipped[..., 0] = crops.shape[-1] - 1 - flipped[..., 0]
        return (
            (points[:n] + flipped) / 2,
            (peaks[:n] + peaks[n:, FLIP_PERMUTATION]) / 2,
            (spread[:n] + spread[n:]) / 2,
        )

    def _decode(self, heatmaps: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        coords, peaks = decode_heatmaps(heatmaps)
        integral = soft_argmax(heatmaps)
        spread = (coords - integral).norm(dim=-1).mean(dim=-1)
        if self.decoding == "soft-argmax":
            coords = integral
        points = coords * self.network.stride + self.network.cell_centre
        return points.double().numpy(), peaks.double().numpy(), spread.double().numpy()


@dataclass
class FaceDetection:
    landmarks: LandmarkSet
    peak_confidence: np.ndarray
    flagged_no_face: bool
    box: tuple[float, float, float, float]  # pixels (column, row) of the face box used
    heatmap_disagreement: float = 0.0  # arg-max vs soft-argmax, heatmap pixels (see NO_FACE_*)
    reason: str = ""  # why it is flagged ('' when not)


def image_to_rgb(image: sitk.Image, what: str = "image") -> np.ndarray:
    """A 2D grey, RGB or RGBA SimpleITK image -> (H, W, 3) float32 in [0, 1] (alpha dropped)."""
    if image.GetDimension() != 2:
        if image.GetDimension() == 3 and image.GetSize()[2] == 1:
            image = image[:, :, 0]
        else:
            raise InputError(
                what, f"is {image.GetDimension()}D (size {image.GetSize()}); a 2D photograph is needed"
            )
    array = sitk.GetArrayFromImage(image).astype(np.float32)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    channels = array.shape[2]
    if channels == 4:
        array = array[..., :3]
    elif channels == 2:  # grey + alpha
        array = np.repeat(array[..., :1], 3, axis=2)
    elif channels != 3:
        raise InputError(what, f"has {channels} components per pixel; grey, RGB or RGBA is needed")
    if not np.isfinite(array).all():
        raise InputError(what, "has NaN or infinite pixel values")
    top = 255.0 if array.max() > 1.0 or image.GetPixelID() in (sitk.sitkUInt8, sitk.sitkVectorUInt8) else 1.0
    if array.max() > 255.0:
        top = float(array.max())
    return array / top


#: A given box is refused when less than this fraction of it lies inside the image.
MIN_BOX_INSIDE = 0.5


def _physical_box_to_pixels(
    image: sitk.Image, box, width: int, height: int
) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) physical -> continuous pixel indices, honouring spacing, origin and direction;
    refuses a box that is not 4 finite numbers, is smaller than 8 x 8 pixels or lies mostly off the image."""
    values = np.asarray(box, dtype=float).ravel() if box is not None else np.array([])
    if values.size != 4 or not np.isfinite(values).all():
        raise InputError("face box", f"{box} is not four finite numbers (x0, y0, x1, y1)")
    x0, y0, x1, y1 = values
    corners = physical_to_index(image, np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]]))
    (c0, r0), (c1, r1) = corners.min(axis=0), corners.max(axis=0)
    if c1 - c0 < 8 or r1 - r0 < 8:
        raise InputError("face box", f"{tuple(values)} is smaller than 8 x 8 pixels")
    inside_w = max(0.0, min(c1, width - 0.5) - max(c0, -0.5))
    inside_h = max(0.0, min(r1, height - 0.5) - max(r0, -0.5))
    inside = inside_w * inside_h / ((c1 - c0) * (r1 - r0))
    if inside < MIN_BOX_INSIDE:
        raise InputError(
            "face box",
            f"{tuple(values)}: only {100 * inside:.0f} % of it lies inside the image "
            f"({width} x {height} pixels, origin {image.GetOrigin()}, spacing {image.GetSpacing()})",
        )
    return float(c0), float(r0), float(c1), float(r1)


def _crop_points(model: FaceModel, rgb: np.ndarray, pixel_box, mirrored: bool = True):
    """Points (68, 2) in image pixels, peaks (68,) and heatmap disagreement of the crop of ``pixel_box``."""
    square = crop_square(pixel_box)
    crop = resample_square(rgb, square, model.input_size)
    points, peaks, spread = model.predict_crops_with_spread(
        normalise(torch.from_numpy(crop.transpose(2, 0, 1).copy())[None]), mirrored
    )
    return from_crop_coordinates(points[0], square, model.input_size), peaks[0], float(spread[0])


def _landmarks_in_box(model: FaceModel, image: sitk.Image, rgb: np.ndarray, pixel_box) -> FaceDetection:
    pixels, peaks, spread = _crop_points(model, rgb, pixel_box)
    landmarks = LandmarkSet(list(LABELS), index_to_physical(image, pixels), name="face landmarks")
    mean_peak = float(np.mean(peaks))
    no_face = mean_peak < NO_FACE_PEAK and spread > NO_FACE_DISAGREEMENT
    reason = (
        f"the heatmaps show no face (mean peak {mean_peak:.2f} < {NO_FACE_PEAK}, arg-max/soft-argmax "
        f"disagreement {spread:.1f} > {NO_FACE_DISAGREEMENT} heatmap px)"
        if no_face
        else ""
    )
    return FaceDetection(landmarks, peaks, bool(no_face), tuple(pixel_box), spread, reason)


#: Passes that only re-centre the crop on a localiser box: each runs in the current box and gives the
#: next box, the landmark box of its points (the training geometry); the detection runs in the last box.
#: Measured on the 414 validation frames (flagged frames counted as failures), former bundled model: no
#: re-centring NME 0.0669, FR@0.10 8.0 %; one mirrored pass 0.0628, 3.9 %; one single-crop pass 0.0630,
#: 4.1 %; two single-crop passes 0.0618, 3.1 %.  Present model: one single-crop pass 0.0588, 3.4 %; two
#: 0.0586, 3.1 %, not worth a third crop's time (a single crop costs about 60 % of a mirrored pair).
RECENTRING_PASSES = 1
#: Whether the re-centring passes also look at the mirrored crop (the final pass always does).
RECENTRING_MIRRORED = False


def _landmarks_from_localiser_box(model: FaceModel, image: sitk.Image, rgb: np.ndarray, box) -> FaceDetection:
    for _ in range(RECENTRING_PASSES):
        pixels, _, _ = _crop_points(model, rgb, box, RECENTRING_MIRRORED)
        box = box_from_points(pixels)
    return _landmarks_in_box(model, image, rgb, box)


def _as_2d_rgb(image: sitk.Image, what: str) -> tuple[sitk.Image, np.ndarray]:
    image = conform_dimension(image, 2, what) if image.GetDimension() == 3 else image
    return image, image_to_rgb(image, what)


def detect_faces(
    model: FaceModel, image: sitk.Image, box=None, what: str = "image", localiser: str = DEFAULT_LOCALISER
) -> list[FaceDetection]:
    """One detection per face: the face in ``box`` (physical x0, y0, x1, y1) when given, else every
    face the localiser finds, largest first (an empty list when it finds none).  A detection whose
    heatmaps show no face is returned flagged, with its reason; the caller decides what to do with it.

    A single-slice 3D image (a photograph loaded as a volume) is taken as 2D.
    """
    image, rgb = _as_2d_rgb(image, what)
    height, width = rgb.shape[:2]
    if box is not None:
        return [_landmarks_in_box(model, image, rgb, _physical_box_to_pixels(image, box, width, height))]
    return [_landmarks_from_localiser_box(model, image, rgb, b) for b in face_boxes(rgb, localiser)]


def detect_every_face(
    model: FaceModel, image: sitk.Image, box=None, what: str = "image", localiser: str = DEFAULT_LOCALISER
) -> list[FaceDetection]:
    """Every face whose heatmaps show a face, largest first (the one in ``box`` when given).  With no
    such face, one flagged detection with its reason: the localiser's largest box or, when it found
    none, the whole image."""
    faces = detect_faces(model, image, box, what, localiser)
    kept = [face for face in faces if not face.flagged_no_face]
    if kept or faces:
        return kept or faces[:1]
    image, rgb = _as_2d_rgb(image, what)
    height, width = rgb.shape[:2]
    whole = _landmarks_in_box(model, image, rgb, (-0.5, -0.5, width - 0.5, height - 0.5))
    whole.flagged_no_face = True
    whole.reason = f"the face localiser ({localiser}) found no face"
    return [whole]


def detect_landmarks(
    model: FaceModel, image: sitk.Image, box=None, what: str = "image", localiser: str = DEFAULT_LOCALISER
) -> FaceDetection:
    """The 68 landmarks of one face: the face in ``box``, else the largest face the localiser finds
    whose heatmaps show a face.  With no face at all the detection is flagged, with its reason."""
    return detect_every_face(model, image, box, what, localiser)[0]
