"""Public API of the face engine for the Slicer Logic and the CLI.

    model = FaceModel.load(path or default_model_path())
    detection = detect_landmarks(model, image, box=(x0, y0, x1, y1) or None)
    detection.landmarks          # LandmarkSet, 68 points "0".."67", (column, row) physical, 2D
    detection.peak_confidence    # (68,) heatmap peak per point (about 1 on a clear face)
    detection.flagged_no_face    # True when the peaks say there is no face in the box

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
from .methods import build_network
from .training import MODEL_KIND

LABELS = [str(i) for i in range(68)]
#: Mean heatmap peak below which the crop is flagged as "no face" (real test faces: ~0.6-0.9; crops
#: of non-face photographs: well below; see benchmarks/face_benchmark.py, which reports both).
NO_FACE_PEAK = 0.25


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
    def input_size(self) -> int:
        return int(self.config["input_size"])

    @torch.no_grad()
    def predict_crops(self, crops: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Normalised crops (B, 3, S, S) -> points in crop pixels (B, 68, 2), peak values (B, 68)."""
        heatmaps = self.network.heatmaps(crops)
        coords, peaks = decode_heatmaps(heatmaps)
        points = coords * self.network.stride + self.network.cell_centre
        return points.double().numpy(), peaks.double().numpy()


@dataclass
class FaceDetection:
    landmarks: LandmarkSet
    peak_confidence: np.ndarray
    flagged_no_face: bool
    box: tuple[float, float, float, float]


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
    points, peaks = model.predict_crops(normalise(torch.from_numpy(crop.transpose(2, 0, 1).copy())[None]))
    pixels = from_crop_coordinates(points[0], square, model.input_size)
    landmarks = LandmarkSet(list(LABELS), index_to_physical(image, pixels), name="face landmarks")
    return FaceDetection(landmarks, peaks[0], bool(np.mean(peaks[0]) < NO_FACE_PEAK), pixel_box)
