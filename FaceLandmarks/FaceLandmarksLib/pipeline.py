"""Public API of the face engine for the Slicer Logic and the CLI.

    model = FaceModel.load(path or default_model_path())
    detection = detect_landmarks(model, image, box=(x0, y0, x1, y1) or None)
    detection.landmarks          # LandmarkSet, 68 points "0".."67", (column, row) physical, 2D
    detection.peak_confidence    # (68,) heatmap peak per point (about 1 on a clear face)
    detection.flagged_no_face    # True when the heatmaps say there is no face in the box

``box`` is in the image's physical coordinates (pixels x spacing, as SimpleITK reports them), the face
box of the training geometry: the landmarks' bounding box plus 10 % on each side (see :mod:`data`).
The network looks at the square of side max(width, height) centred on the box.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from LandmarkCoreLib.errors import InputError, ModelFileError
from LandmarkCoreLib.images import conform_dimension, index_to_physical, physical_to_index
from LandmarkCoreLib.landmarks import LandmarkSet
from LandmarkCoreLib.modelfile import ModelFile, load_model_file

from .data import crop_square, from_crop_coordinates, normalise, resample_square
from .decoder import decode_heatmaps
from .losses import soft_argmax
from .methods import build_network
from .training import MODEL_KIND

LABELS = [str(i) for i in range(68)]
#: "No face" rule, calibrated on the bundled model (benchmarks/face_benchmark.py reports it): a crop is
#: flagged when its mean heatmap peak is low AND the arg-max and soft-argmax of the heatmaps disagree
#: (diffuse or multi-modal heatmaps).  Real test faces: mean peak >= 0.64, disagreement <= 3.9 heatmap
#: pixels; cephalograms, noise and flat images: peak <= 0.62, disagreement >= 4.2.
NO_FACE_PEAK = 0.62
NO_FACE_DISAGREEMENT = 4.0


def default_model_path() -> Path:
    return Path(__file__).resolve().parent / "models" / "face_default.pt"


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

    @torch.no_grad()
    def predict_crops(self, crops: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Normalised crops (B, 3, S, S) -> points in crop pixels (B, 68, 2), peak values (B, 68)."""
        points, peaks, _ = self.predict_crops_with_spread(crops)
        return points, peaks

    @torch.no_grad()
    def predict_crops_with_spread(self, crops: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """As :meth:`predict_crops`, plus per crop the mean distance (heatmap pixels) between the arg-max
        and the soft-argmax of the heatmaps, which is large when the heatmaps are diffuse."""
        heatmaps = self.network.heatmaps(crops)
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
    top = 255.0 if array.max() > 1.0 or image.GetPixelID() in (sitk.sitkUInt8, sitk.sitkVectorUInt8) else 1.0
    if array.max() > 255.0:
        top = float(array.max())
    return array / top


def _physical_box_to_pixels(image: sitk.Image, box) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) physical -> continuous pixel indices, honouring spacing, origin and direction."""
    x0, y0, x1, y1 = (float(v) for v in box)
    corners = physical_to_index(image, np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]]))
    (c0, r0), (c1, r1) = corners.min(axis=0), corners.max(axis=0)
    return float(c0), float(r0), float(c1), float(r1)


def detect_landmarks(model: FaceModel, image: sitk.Image, box=None, what: str = "image") -> FaceDetection:
    """68 landmarks of the face in ``box`` (physical x0, y0, x1, y1; None = the whole image).

    A single-slice 3D image (a photograph loaded as a volume) is taken as 2D.
    """
    image = conform_dimension(image, 2, what) if image.GetDimension() == 3 else image
    rgb = image_to_rgb(image, what)
    height, width = rgb.shape[:2]
    pixel_box = (
        (-0.5, -0.5, width - 0.5, height - 0.5) if box is None else _physical_box_to_pixels(image, box)
    )
    if pixel_box[2] - pixel_box[0] < 8 or pixel_box[3] - pixel_box[1] < 8:
        raise InputError("face box", f"{box} is smaller than 8 x 8 pixels")
    square = crop_square(pixel_box)
    crop = resample_square(rgb, square, model.input_size)
    points, peaks, spread = model.predict_crops_with_spread(
        normalise(torch.from_numpy(crop.transpose(2, 0, 1).copy())[None])
    )
    pixels = from_crop_coordinates(points[0], square, model.input_size)
    landmarks = LandmarkSet(list(LABELS), index_to_physical(image, pixels), name="face landmarks")
    no_face = np.mean(peaks[0]) < NO_FACE_PEAK and spread[0] > NO_FACE_DISAGREEMENT
    return FaceDetection(landmarks, peaks[0], bool(no_face), pixel_box, float(spread[0]))
