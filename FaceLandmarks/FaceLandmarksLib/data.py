"""YouTube-Faces samples for the face engine: face boxes, crops, a cached tensor set, augmentation.

Geometry (shared by training, inference and the dlib comparison):

* **face box** = bounding box of the 68 ground-truth points, expanded by ``BOX_MARGIN`` (10 %) of its
  width/height on every side.  The same box is handed to dlib's shape predictor.
* **network crop** = the square of side ``max(box width, box height)`` centred on the box, resampled to
  ``input_size`` pixels (anti-aliased).  Point coordinates are continuous pixel indices (pixel centres
  at integers), as SimpleITK reports them for a 2D photograph with unit spacing.
* the **cache** stores a wider square (``CACHE_CONTEXT`` x the crop) so that the scale/rotation/shift
  augmentation can be applied to the cached tensor without re-reading JPEGs.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from LandmarkCoreLib.datasets import FaceSample, youtube_faces_samples
from LandmarkCoreLib.errors import InputError
from PIL import Image
from scipy.ndimage import gaussian_filter

N_POINTS = 68
BOX_MARGIN = 0.10
CACHE_CONTEXT = 1.5
#: Training jitter of the crop = what the localiser really leaves: the 95th percentile of its calibrated
#: boxes' shift (crop-side fractions, x and y) and scale error against the true landmark box, measured
#: on the 'fit' identities (``benchmarks/face_benchmark.py --calibrate``: OpenCV Haar x 0.163, y 0.070,
#: scale 0.84-1.14; dlib HOG x 0.170, y 0.090, scale 0.82-1.17).
LOCALISER_JITTER = {"shift": (0.17, 0.09), "scale": 0.17}
#: iBUG/300-W 68-point mirror permutation: index i of a flipped face is point FLIP_PERMUTATION[i].
FLIP_PERMUTATION = np.array(
    list(range(16, -1, -1))  # jaw
    + list(range(26, 16, -1))  # brows
    + [27, 28, 29, 30]  # nose bridge
    + [35, 34, 33, 32, 31]  # nostrils
    + [45, 44, 43, 42, 47, 46]  # right eye <- left eye
    + [39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48]  # outer lip top
    + [59, 58, 57, 56, 55]  # outer lip bottom
    + [64, 63, 62, 61, 60]  # inner lip top
    + [67, 66, 65]  # inner lip bottom
)
#: ImageNet-style normalisation applied to RGB in [0, 1].
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def box_from_points(points: np.ndarray, margin: float = BOX_MARGIN) -> tuple[float, float, float, float]:
    """Landmark bounding box expanded by ``margin`` of its size on each side: (x0, y0, x1, y1)."""
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    dx, dy = (x1 - x0) * margin, (y1 - y0) * margin
    return float(x0 - dx), float(y0 - dy), float(x1 + dx), float(y1 + dy)


def crop_square(box: tuple[float, float, float, float], context: float = 1.0) -> tuple[float, float, float]:
    """(centre x, centre y, side) of the network crop for ``box``, widened by ``context``."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * context
    return (x0 + x1) / 2.0, (y0 + y1) / 2.0, side


def resample_square(rgb: np.ndarray, square: tuple[float, float, float], size: int) -> np.ndarray:
    """Resample the square (cx, cy, side) of an (H, W, 3) float image to (size, size, 3), zero outside.

    Anti-aliased: the image is blurred before sampling when the square is shrunk.
    """
    cx, cy, side = square
    step = side / size
    # only the part of the image under the square (plus the blur's reach) is filtered and sampled
    reach = side / 2.0 + 4.0 * max(step, 1.0)
    left, top = max(0, int(cx - reach)), max(0, int(cy - reach))
    rgb = rgb[top : max(top + 1, int(cy + reach) + 2), left : max(left + 1, int(cx + reach) + 2)]
    cx, cy = cx - left, cy - top
    if step > 1.0:
        rgb = gaussian_filter(rgb, sigma=(0.45 * step, 0.45 * step, 0))
    offsets = (np.arange(size) + 0.5) * step - side / 2.0
    height, width = rgb.shape[:2]
    gx = (2.0 * (cx + offsets) + 1.0) / width - 1.0
    gy = (2.0 * (cy + offsets) + 1.0) / height - 1.0
    grid = torch.from_numpy(np.stack(np.meshgrid(gx, gy), axis=-1)).float()[None]
    image = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float()[None]
    out = F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out[0].permute(1, 2, 0).numpy()


def to_crop_coordinates(points: np.ndarray, square: tuple[float, float, float], size: int) -> np.ndarray:
    """Image pixel coordinates -> crop pixel coordinates."""
    cx, cy, side = square
    return (points - np.array([cx, cy]) + side / 2.0) * (size / side) - 0.5


def from_crop_coordinates(points: np.ndarray, square: tuple[float, float, float], size: int) -> np.ndarray:
    """Crop pixel coordinates -> image pixel coordinates (inverse of :func:`to_crop_coordinates`)."""
    cx, cy, side = square
    return (points + 0.5) * (side / size) - side / 2.0 + np.array([cx, cy])


def load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


@dataclass
class CachedSplit:
    """Pre-cropped images (uint8, N x 3 x S x S, S = CACHE_CONTEXT * input size) with their points in
    cache-pixel coordinates, identities as class indices (-1: a person outside ``classes``), and the
    file names."""

    images: torch.Tensor
    points: torch.Tensor  # (N, 68, 2) float32
    identities: torch.Tensor  # (N,) int64
    names: list[str]
    classes: list[str]


def cache_size(input_size: int) -> int:
    return int(round(input_size * CACHE_CONTEXT))


def build_cache(samples: list[FaceSample], input_size: int, classes: list[str]) -> CachedSplit:
    size = cache_size(input_size)
    images = torch.empty((len(samples), 3, size, size), dtype=torch.uint8)
    points = torch.empty((len(samples), N_POINTS, 2), dtype=torch.float32)
    class_index = {name: i for i, name in enumerate(classes)}
    for i, sample in enumerate(samples):
        square = crop_square(box_from_points(sample.points), CACHE_CONTEXT)
        crop = resample_square(load_rgb(sample.image), square, size)
        images[i] = torch.from_numpy(np.clip(crop * 255.0 + 0.5, 0, 255).astype(np.uint8).transpose(2, 0, 1))
        points[i] = torch.from_numpy(to_crop_coordinates(sample.points, square, size)).float()
    identities = torch.tensor([class_index.get(s.identity, -1) for s in samples], dtype=torch.int64)
    return CachedSplit(images, points, identities, [s.image.name for s in samples], classes)


#: Identity-disjoint validation: this many of the training split's people are held out of every
#: training run (landmarks and identity labels) and used for every model choice; the shared test
#: split holds the same people as the training split ("seen identities").
VALIDATION_IDENTITIES = 40


def split_identities(
    samples: list[FaceSample], n_validation: int = VALIDATION_IDENTITIES, seed: int = 0
) -> tuple[list[FaceSample], list[FaceSample]]:
    """(fit, validation) samples of the training split: ``n_validation`` people drawn with ``seed``
    go to validation with all their frames, nobody is in both."""
    people = sorted({s.identity for s in samples})
    order = np.random.default_rng(seed).permutation(len(people))
    held_out = {people[i] for i in order[:n_validation]}
    return [s for s in samples if s.identity not in held_out], [s for s in samples if s.identity in held_out]


def protocol_samples(subset: str, data_root: str | os.PathLike | None = None) -> list[FaceSample]:
    """'fit' / 'validation' (identity-disjoint parts of the training split) or 'test' (seen people)."""
    if subset == "test":
        return youtube_faces_samples("test", data_root)
    if subset not in ("fit", "validation"):
        raise InputError("YouTube-Faces subset", f"'{subset}' is not 'fit', 'validation' or 'test'")
    fit, validation = split_identities(youtube_faces_samples("train", data_root))
    return fit if subset == "fit" else validation


def load_cached_split(
    split: str,
    input_size: int,
    data_root: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> CachedSplit:
    """The cached split of YouTube-Faces: 'train' or 'test' (shared reader), or 'fit' / 'validation'
    (see :func:`protocol_samples`), built on first use under ``cache_dir`` (default:
    $FACE_LANDMARKS_CACHE or /tmp/face_landmarks_cache; never inside the repository).
    Identity classes are those of the split the source network learns from ('fit' for the protocol
    subsets, else 'train')."""
    protocol = split in ("fit", "validation")
    samples = protocol_samples(split, data_root) if protocol else youtube_faces_samples(split, data_root)
    class_source = (
        protocol_samples("fit", data_root) if protocol else youtube_faces_samples("train", data_root)
    )
    classes = sorted({s.identity for s in class_source})
    cache_dir = Path(cache_dir or os.environ.get("FACE_LANDMARKS_CACHE", "/tmp/face_landmarks_cache"))
    path = cache_dir / f"{split}_{input_size}_{len(samples)}.pt"
    if path.is_file():
        stored = torch.load(path, weights_only=True)
        return CachedSplit(
            stored["images"], stored["points"], stored["identities"], stored["names"], stored["classes"]
        )
    cached = build_cache(samples, input_size, classes)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(vars(cached), tmp)
    os.replace(tmp, path)
    return cached


def normalise(images_uint8_or_float: torch.Tensor) -> torch.Tensor:
    """uint8 RGB (or float in [0, 1]) N x 3 x H x W -> network input."""
    x = images_uint8_or_float.float()
    if images_uint8_or_float.dtype == torch.uint8:
        x = x / 255.0
    return (x - MEAN) / STD


def augment_batch(
    images: torch.Tensor,
    points: torch.Tensor,
    input_size: int,
    generator: torch.Generator,
    augment: bool = True,
    max_rotation_deg: float = 15.0,
    scale_range: float = LOCALISER_JITTER["scale"],
    max_shift: tuple[float, float] = LOCALISER_JITTER["shift"],
    photometric: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut network inputs from cached crops with a random similarity transform and flip.

    Scale (1 +- ``scale_range``) and shift (+- ``max_shift`` of the crop side in x, y) are uniform;
    ``photometric`` > 0 adds :func:`photometric_jitter` of that strength.

    Returns normalised images (B, 3, input_size, input_size) and points in input pixels (B, 68, 2).
    Without ``augment`` the central crop is taken (the evaluation geometry).
    """
    batch = images.shape[0]
    size_in = images.shape[-1]
    if augment:
        angle = (torch.rand(batch, generator=generator) * 2 - 1) * math.radians(max_rotation_deg)
        scale = 1.0 + (torch.rand(batch, generator=generator) * 2 - 1) * scale_range
        # crop-side fractions -> cache normalised units (the crop spans 2 / CACHE_CONTEXT of them)
        shift = (
            (torch.rand(batch, 2, generator=generator) * 2 - 1) * torch.tensor(max_shift) * 2 / CACHE_CONTEXT
        )
        flip = torch.rand(batch, generator=generator) < 0.5
    else:
        angle, scale = torch.zeros(batch), torch.ones(batch)
        shift, flip = torch.zeros(batch, 2), torch.zeros(batch, dtype=torch.bool)
    # output normalised coords u (in [-1,1] of the crop) -> input normalised coords: x = s*R*F*u + t
    crop_fraction = 1.0 / CACHE_CONTEXT
    cos, sin = torch.cos(angle), torch.sin(angle)
    mirror = torch.where(flip, -1.0, 1.0)
    theta = torch.zeros(batch, 2, 3)
    theta[:, 0, 0] = cos * scale * crop_fraction * mirror
    theta[:, 0, 1] = -sin * scale * crop_fraction
    theta[:, 1, 0] = sin * scale * crop_fraction * mirror
    theta[:, 1, 1] = cos * scale * crop_fraction
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, (batch, 3, input_size, input_size), align_corners=False)
    out = F.grid_sample(
        images.float() / 255.0, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    # points: cache pixels -> cache normalised -> invert the affine -> crop pixels
    p = (2.0 * points + 1.0) / size_in - 1.0
    p = p - theta[:, None, :, 2]
    a = theta[:, :, :2]
    u = torch.linalg.solve(a[:, None], p[..., None])[..., 0]
    crop_points = ((u + 1.0) * input_size - 1.0) / 2.0
    perm = torch.as_tensor(FLIP_PERMUTATION)
    crop_points = torch.where(flip[:, None, None], crop_points[:, perm], crop_points)
    if augment and photometric > 0:
        out = photometric_jitter(out, photometric, generator)
    return normalise(out), crop_points


def photometric_jitter(images: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """Random per-image brightness and contrast (x 1 +- 0.4 s), saturation (x 1 +- 0.6 s), gamma
    (exp(+-0.4 s)), grey (probability 0.1 s) and blur (probability 0.3 s: down-sampled to 40-100 % and
    back) of RGB images in [0, 1] (B, 3, H, W); s = ``strength``."""

    def uniform(spread: float) -> torch.Tensor:
        return (1.0 + (torch.rand(len(images), generator=generator) * 2 - 1) * spread * strength).view(
            -1, 1, 1, 1
        )

    grey = (images * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    images = grey + (images - grey) * uniform(0.6)
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    images = ((images - mean) * uniform(0.4) + mean) * uniform(0.4)
    gamma = torch.exp((torch.rand(len(images), generator=generator) * 2 - 1) * 0.4 * strength)
    images = images.clamp(0.0, 1.0) ** gamma.view(-1, 1, 1, 1)
    to_grey = torch.rand(len(images), generator=generator) < 0.1 * strength
    images = torch.where(to_grey.view(-1, 1, 1, 1), images.mean(1, keepdim=True).expand_as(images), images)
    size = images.shape[-1]
    for i in torch.nonzero(torch.rand(len(images), generator=generator) < 0.3 * strength)[:, 0]:
        low = max(8, int(size * (0.4 + 0.6 * float(torch.rand(1, generator=generator)))))
        small = F.interpolate(images[i : i + 1], size=(low, low), mode="area")
        images[i] = F.interpolate(small, size=(size, size), mode="bilinear", align_corners=False)[0]
    return images
