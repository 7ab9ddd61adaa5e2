"""Public detection API for the Slicer Logic and the CLI.

::

    model = KneeModel.load(default_model_path())          # or a trained / imported knee-model file
    landmarks = detect_landmarks(model, sitk_image_2d)     # LandmarkSet in the image's physical space

Stage 1 finds the ROI centre on the whole image at low resolution, stage 2 all landmarks in the ROI at
high resolution (KNEEL's two-stage inference); a model with a stage 3 then refines each landmark in a small
patch around it at a finer pixel size (all patches in one batch).

Before the networks run, the pixels are checked to hold a radiograph (``image_content``); after them, a
model with a shape model checks that the landmarks form a plausible configuration at a plausible size
(``shape_model``). When they do not, the film is tried once more mirrored left-right (a patient facing
the other way) and its landmarks mapped back; when neither orientation is plausible the image is refused.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from LandmarkCoreLib.device import fold_batch_norm
from LandmarkCoreLib.errors import InputError, ModelFileError
from LandmarkCoreLib.images import index_to_physical
from LandmarkCoreLib.landmarks import LandmarkSet
from LandmarkCoreLib.modelfile import load_model_file
from LandmarkCoreLib.networks import KneelHourglass, soft_argmax
from LandmarkCoreLib.progress import ProgressCallback, no_progress
from torch import nn

from .data import (
    ScaledImage,
    apply_homography,
    crop_transform,
    image_array,
    normalise,
    sample_crops,
    scale_array_to,
)
from .image_content import check_image_content, check_pixel_size
from .model_file import MODEL_KIND
from .presets import Preset, StageGeometry
from .shape_model import ShapeFit, ShapeModel

MODELS_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_MODEL_NAME = "cephalometric_isbi2015.pt"
#: an image whose both sides are below this fraction of the stage-2 field of view is refused
MIN_FIELD_FRACTION = 0.25


def default_model_path() -> Path:
    """The bundled cephalometric model (trained on ISBI 2015 images 001-150)."""
    return MODELS_DIR / DEFAULT_MODEL_NAME


@dataclass
class KneeModel:
    """A loaded two-stage (or stage-2-only) KNEEL model, optionally with a stage-3 refinement network."""

    preset: Preset
    stage1: nn.Module | None
    stage2: nn.Module
    config: dict
    path: Path | None = None
    stage3: nn.Module | None = None
    shape_model: ShapeModel | None = None

    @classmethod
    def load(cls, path: str | os.PathLike) -> KneeModel:
        stored = load_model_file(path, MODEL_KIND)
        networks = stored.config.get("networks", {})
        if "stage2" not in stored.tensors:
            raise ModelFileError(
                f"model file '{path}': holds no stage-2 network (a stage-1-only training "
                "result); train stage 2 with --init pointing to it"
            )
        try:
            preset = Preset.from_config(stored.config["preset"])
            stages = {
                name: _network(networks[name], stored.tensors[name], path, name)
                for name in ("stage1", "stage2", "stage3")
                if name in stored.tensors
            }
        except (KeyError, TypeError) as exc:
            raise ModelFileError(f"model file '{path}': incomplete configuration ({exc})") from None
        if "stage3" in stages and preset.stage3 is None:
            raise ModelFileError(f"model file '{path}': stage-3 network without stage-3 geometry")
        shape = stored.config.get("shape_model")
        if shape is not None:
            shape = ShapeModel.from_config(shape, len(preset.landmark_names), f"model file '{path}'")
        for key in ("min_heatmap_confidence", "facing_confidence"):
            value = stored.config.get(key, 0.0)
            if not isinstance(value, float | int) or not 0.0 <= value < 1.0:
                raise ModelFileError(f"model file '{path}': {key} {value!r} not in [0, 1)")
        ratio = stored.config.get("max_rescaled_confidence_ratio", 1.0)
        if not isinstance(ratio, float | int) or not 0.1 <= ratio <= 10.0:
            raise ModelFileError(
                f"model file '{path}': max_rescaled_confidence_ratio {ratio!r} not in [0.1, 10]"
            )
        return cls(
            preset,
            stages.get("stage1"),
            stages["stage2"],
            stored.config,
            Path(path),
            stages.get("stage3"),
            shape,
        )

    @property
    def stages_description(self) -> str:
        stages = "two stages" if self.stage1 is not None else "stage 2 only"
        return stages + (" + refinement" if self.stage3 is not None else "")

    @property
    def landmark_names(self) -> list[str]:
        return list(self.preset.landmark_names)


def _network(net_config: dict, state: dict | list[dict], path, name: str) -> nn.Module:
    """The stage's network; a list of state dicts (imported KNEEL folds) becomes a fold ensemble."""
    from .kneel_import import FoldEnsemble, load_into_network

    if isinstance(state, list):
        folds = [
            load_into_network(s, net_config, f"model file '{path}' {name} fold {i}")
            for i, s in enumerate(state)
        ]
        network = FoldEnsemble(folds)
    else:
        network = load_into_network(state, net_config, f"model file '{path}' {name}")
    # channels-last convolutions measured ~20 % faster on this CPU (benchmarks/knee_benchmark.py)
    return fold_batch_norm(network.eval()).to(memory_format=torch.channels_last)


def prepare_image(
    image: sitk.Image, notice: Callable[[str], None] | None = None
) -> tuple[sitk.Image, np.ndarray]:
    """A 2D geometry image and its (rows, cols) float32 pixels; a single-slice 3D volume is reduced to 2D,
    vector (RGB) pixels are averaged to grey with a notice."""
    if image.GetDimension() == 3:
        if image.GetSize()[2] != 1:
            raise InputError(
                "image",
                f"a 3D volume with {image.GetSize()[2]} slices; KNEEL needs one 2D "
                "radiograph (a single slice)",
            )
        image = image[:, :, 0]
    elif image.GetDimension() != 2:
        raise InputError("image", f"{image.GetDimension()}D images are not supported; give a 2D radiograph")
    if image.GetNumberOfComponentsPerPixel() > 1 and notice is not None:
        notice(f"{image.GetNumberOfComponentsPerPixel()}-component (colour) pixels were converted to grey")
    return image, image_array(image)


def check_field_of_view(image: sitk.Image, spacing: tuple[float, float], preset: Preset) -> None:
    extent = np.array(image.GetSize()[:2], dtype=float) * np.array(spacing)
    field = np.array(preset.stage2.field_mm)
    if np.all(extent < MIN_FIELD_FRACTION * field) or min(image.GetSize()[:2]) < 16:
        raise InputError(
            "image",
            f"{extent[0]:.1f} x {extent[1]:.1f} mm ({image.GetSize()[0]} x {image.GetSize()[1]} px) "
            f"is far smaller than the model's {field[0]:.0f} x {field[1]:.0f} mm field of view; "
            "is the pixel spacing right?",
        )


def network_input(crop: torch.Tensor, config: dict, in_channels: int) -> torch.Tensor:
    """Intensity normalisation the model was trained with, grey repeated to ``in_channels``.

    Own models: each crop standardised. Imported KNEEL models: the crop's 0.5-99.5 percentile range
    mapped to [0, 1] (their 8-bit X-ray preprocessing, approximately), then their channel mean/std."""
    recipe = config.get("input_normalisation")
    if recipe is None:
        return normalise(crop).expand(-1, in_channels, -1, -1)
    low, high = torch.quantile(crop.flatten(), torch.tensor([0.005, 0.995], dtype=crop.dtype))
    unit = ((crop - low) / (high - low).clamp_min(1e-6)).clamp(0, 1).expand(-1, in_channels, -1, -1)
    mean = torch.tensor(recipe["mean"], dtype=crop.dtype).reshape(1, -1, 1, 1)
    std = torch.tensor(recipe["std"], dtype=crop.dtype).reshape(1, -1, 1, 1)
    return (unit - mean) / std


def run_stage(
    network: nn.Module,
    scaled: ScaledImage,
    centre: np.ndarray,
    geometry: StageGeometry,
    mirror: bool,
    config: dict,
) -> tuple[np.ndarray, float]:
    """Landmarks (K, 2) in ``scaled`` index space from one crop centred on ``centre``, and the network's
    confidence (:func:`coordinates_and_confidence`)."""
    matrix = crop_transform(centre, geometry.size, mirror=mirror)
    crop = sample_crops([scaled.array], [matrix], geometry.size)
    in_channels = next(network.parameters()).shape[1]
    with torch.inference_mode():
        batch = network_input(crop, config, in_channels).contiguous(memory_format=torch.channels_last)
        coords, confidence = coordinates_and_confidence(network, batch)
    offset = 0.0 if config.get("coordinate_convention") == "kneel" else KneelHourglass.cell_centre
    return apply_homography(matrix, coords[0].double().numpy() * np.array(geometry.size) + offset), confidence


def coordinates_and_confidence(network: nn.Module, batch: torch.Tensor) -> tuple[torch.Tensor, float]:
    """The network's normalised coordinates (B, K, 2) and, for a :class:`KneelHourglass`, the mean over
    landmarks of each heatmap's largest softmax probability (NaN for networks without heatmaps)."""
    if not isinstance(network, KneelHourglass):
        return network(batch), float("nan")
    heatmaps = network.heatmaps(batch)
    h, w = heatmaps.shape[-2:]
    coords = soft_argmax(heatmaps) / torch.tensor([w, h], dtype=heatmaps.dtype)
    peaks = torch.softmax(heatmaps.flatten(2), dim=2).amax(dim=2)
    return coords, float(peaks[0].mean())


def roi_centre(model: KneeModel, stage2: ScaledImage, mirror: bool, single_stage: bool) -> np.ndarray:
    """ROI centre in stage-2 array indices: from stage 1, or the training prior without it."""
    preset = model.preset
    rows, cols = stage2.array.shape
    image_centre = np.array([(cols - 1) / 2, (rows - 1) / 2])
    offset = np.array(preset.roi_offset_mm) / preset.stage2.spacing_mm
    if mirror:
        offset[0] = -offset[0]
    if single_stage or model.stage1 is None:
        prior = np.array(model.config.get("roi_prior_mm", [0.0, 0.0])) / preset.stage2.spacing_mm
        return image_centre + prior * np.array([-1.0 if mirror else 1.0, 1.0]) + offset
    stage1 = stage2.rescaled(preset.stage1.spacing_mm, preset.stage2.spacing_mm)
    rows1, cols1 = stage1.array.shape
    point, _ = run_stage(
        model.stage1,
        stage1,
        np.array([(cols1 - 1) / 2, (rows1 - 1) / 2]),
        preset.stage1,
        mirror,
        model.config,
    )
    return stage2.from_original(stage1.to_original(point))[0] + offset


def refine_landmarks(model: KneeModel, scaled: ScaledImage, points: np.ndarray, mirror: bool) -> np.ndarray:
    """Stage 3: each landmark (K, 2 original-image indices) re-detected in its own patch of ``scaled`` (the
    image at stage 3's pixel size), all in one batch; patch k is read from output channel k."""
    geometry = model.preset.stage3
    matrices = [crop_transform(c, geometry.size, mirror=mirror) for c in scaled.from_original(points)]
    crops = sample_crops([scaled.array] * len(matrices), matrices, geometry.size)
    in_channels = next(model.stage3.parameters()).shape[1]
    with torch.inference_mode():
        batch = network_input(crops, model.config, in_channels).contiguous(memory_format=torch.channels_last)
        own = torch.arange(len(matrices))
        coords = model.stage3(batch)[own, own].double().numpy()
    pixels = coords * np.array(geometry.size) + KneelHourglass.cell_centre
    refined = np.stack([apply_homography(m, p[None])[0] for m, p in zip(matrices, pixels, strict=True)])
    return scaled.to_original(refined)


@dataclass(frozen=True)
class Detection:
    points: np.ndarray  # (K, 2) original-image indices
    confidence: float  # stage 2's mean heatmap peak (coordinates_and_confidence)


def locate_landmarks(
    model: KneeModel, scaled: list[ScaledImage], options: dict, progress: ProgressCallback
) -> Detection:
    """Stages 1 and 2 on ``scaled[0]`` (stage 2's pixel size), then stage 3 on ``scaled[1]`` when given.
    ``options``: ``mirror`` and ``single_stage``."""
    stage2, mirror = scaled[0], options["mirror"]
    progress(0.1, "stage 1: locating the region of interest")
    centre = roi_centre(model, stage2, mirror, options["single_stage"])
    progress(0.5, "stage 2: locating the landmarks")
    indices, confidence = run_stage(model.stage2, stage2, centre, model.preset.stage2, mirror, model.config)
    points = stage2.to_original(indices)
    if len(scaled) > 1:
        progress(0.8, "stage 3: refining each landmark")
        points = refine_landmarks(model, scaled[1], points, mirror)
    return Detection(points, confidence)


def flipped(scaled: ScaledImage) -> ScaledImage:
    """``scaled`` of the left-right mirrored original (a box resize covers the whole width, so the
    mirror of the resized array is the resize of the mirrored image)."""
    return ScaledImage(np.ascontiguousarray(scaled.array[:, ::-1]), scaled.factor, scaled.shift)


@dataclass(frozen=True)
class Verdict:
    detection: Detection
    fit: ShapeFit
    acceptable: bool  # a plausible shape and size, and confident enough
    facing_right: bool  # acceptable and close enough to the training shapes not to try the mirror

    def describe(self, shape: ShapeModel) -> str:
        return f"{self.fit.describe(shape)}, heatmap confidence {self.detection.confidence:.3f}"


def judge(model: KneeModel, detection: Detection, orientation: np.ndarray) -> Verdict:
    """Acceptable: a plausible shape and size, and a confidence at least ``min_heatmap_confidence``.
    Facing right: also within the shape model's facing bound and at least ``facing_confidence``."""
    shape, config = model.shape_model, model.config
    fit = shape.measure(detection.points * orientation)
    confidence = detection.confidence  # NaN (no heatmaps): not judged
    acceptable = fit.plausible and not confidence < config.get("min_heatmap_confidence", 0.0)
    facing = fit.distance <= shape.facing_bound and not confidence < config.get("facing_confidence", 0.0)
    return Verdict(detection, fit, acceptable, acceptable and facing)


def confidence_at_pixel_size(
    model: KneeModel, array: np.ndarray, spacing: tuple[float, float], options: dict
) -> float:
    """Stage 2's heatmap confidence (stages 1 and 2) on the film ``array`` read at pixel size ``spacing``:
    the larger of the film as given and mirrored."""
    (stage2,) = scale_array_to(array, spacing, [model.preset.stage2.spacing_mm])
    return max(
        locate_landmarks(model, [s], options, no_progress).confidence for s in (stage2, flipped(stage2))
    )


def require_consistent_pixel_size(model, array, spacing, options, verdict: Verdict) -> None:
    """The accepted result against the film read at half and double the pixel size (models calibrated
    with ``max_rescaled_confidence_ratio``)."""
    bound, confidence = model.config.get("max_rescaled_confidence_ratio"), verdict.detection.confidence
    if bound is not None and not np.isnan(confidence):

        def read_at(factor: float) -> float:
            return confidence_at_pixel_size(model, array, np.multiply(spacing, factor), options)

        check_pixel_size(confidence, read_at, spacing[0], bound)


def plausible_landmarks(
    model: KneeModel,
    scaled: list[ScaledImage],
    array: np.ndarray,
    spacing: tuple[float, float],
    options: dict,
    progress: ProgressCallback,
    notice: Callable[[str], None] | None,
) -> np.ndarray:
    """:func:`locate_landmarks`, judged against the model's shape model and confidence bound. A result
    that does not look like a film of the training orientation is detected again on the mirrored film
    (landmarks mapped back); the more confident of the two is kept, and refused when not acceptable, or
    when the film ``array`` read at half or double the pixel size is clearly more confident (checked on
    this path only: none of the 600 ISBI films read at half or double their pixel size looked right-facing
    as given, stage-2 confidence at most 0.0128)."""
    detection = locate_landmarks(model, scaled, options, progress)
    if model.shape_model is None:
        return detection.points
    orientation = np.array([-1.0 if options["mirror"] else 1.0, 1.0]) * np.array(spacing)
    first = judge(model, detection, orientation)
    if first.facing_right:
        return detection.points
    if not options["check_facing"]:
        raise implausible(model, [first], spacing)
    mirrored = locate_landmarks(model, [flipped(s) for s in scaled], options, progress)
    second = judge(model, mirrored, orientation)  # judged as the networks saw it: facing right
    best = max((first, second), key=lambda v: (v.acceptable, ranking(v)))
    if not best.acceptable:
        raise implausible(model, [first, second], spacing)
    require_consistent_pixel_size(model, array, spacing, options, best)
    if best is second and notice is not None:
        notice(
            "the film faces the other way: detected on its mirror image and mapped back (as given: "
            f"{first.describe(model.shape_model)}; mirrored: {second.describe(model.shape_model)})"
        )
    if best is first:
        return first.detection.points
    columns = scaled[0].array.shape[1] * scaled[0].factor[0]  # original image width in pixels
    return np.c_[columns - 1 - mirrored.points[:, 0], mirrored.points[:, 1]]


def ranking(verdict: Verdict) -> float:
    """Higher is better: the heatmap confidence, or the negative shape distance without heatmaps."""
    confidence = verdict.detection.confidence
    return -verdict.fit.distance if np.isnan(confidence) else confidence


def implausible(model: KneeModel, verdicts: list[Verdict], spacing: tuple[float, float]) -> InputError:
    found = "; mirrored: ".join(v.describe(model.shape_model) for v in verdicts)
    bound = model.config.get("min_heatmap_confidence", 0.0)
    return InputError(
        "image",
        f"the detected landmarks are not a plausible {model.preset.name} configuration ({found}; "
        f"confidence ≥ {bound:.3f} expected): not a {model.preset.name} radiograph, or the pixel size "
        f"({spacing[0]:g} mm) is wrong",
    )


def detection_spacing(
    model: KneeModel, image: sitk.Image, pixel_size_mm: float | None, notice: Callable[[str], None] | None
) -> tuple[float, float]:
    """The pixel size the networks are told: ``pixel_size_mm``, else the image's own, else (spacing 1, a
    file without one) the model's nominal one, with a notice."""
    if pixel_size_mm is not None:
        return (float(pixel_size_mm), float(pixel_size_mm))
    spacing = tuple(float(s) for s in image.GetSpacing()[:2])
    nominal = model.config.get("nominal_pixel_size_mm")
    if spacing == (1.0, 1.0) and nominal not in (None, 1.0):
        spacing = (float(nominal), float(nominal))
        if notice is not None:
            notice(
                f"the image has no pixel size (spacing 1, as files without one are read); detecting at "
                f"the training images' {nominal} mm (give pixel_size_mm / --pixel-size otherwise)"
            )
    return spacing


def detect_landmarks(
    model: KneeModel,
    image: sitk.Image,
    progress: ProgressCallback = no_progress,
    single_stage: bool = False,
    mirror: bool = False,
    notice: Callable[[str], None] | None = None,
    pixel_size_mm: float | None = None,
    refine: bool = True,
    check_facing: bool = True,
) -> LandmarkSet:
    """Landmarks of ``model``'s preset on a 2D ``image``, in the image's physical space (LPS mm; a plain
    JPEG/PNG: column * spacing, row * spacing). ``mirror`` flips the image left-right first (KNEEL's
    left knees); ``single_stage`` skips stage 1 and uses the training-set mean ROI position.
    ``pixel_size_mm``: the true pixel size when the image's spacing is not (a JPEG read with 1.0); it
    sets the scale the networks see, the output stays in the image's own physical space. Without it, an
    image with spacing exactly 1 is taken to have the training images' pixel size (with a notice).
    ``refine=False`` skips the model's stage 3 (when it has one). ``check_facing=False`` refuses a
    result that does not look like a film facing the training direction instead of retrying it mirrored.

    Raises :class:`InputError` for an image without a radiograph in it and for landmarks that do not
    form a plausible configuration in either facing direction (models with a shape model)."""
    image, array = prepare_image(image, notice)
    spacing = detection_spacing(model, image, pixel_size_mm, notice)
    check_field_of_view(image, spacing, model.preset)
    refine = refine and model.stage3 is not None
    pixel_sizes = [model.preset.stage2.spacing_mm] + ([model.preset.stage3.spacing_mm] if refine else [])
    scaled = scale_array_to(array, spacing, pixel_sizes)  # [stage 2's] or [stage 2's, stage 3's]
    check_image_content(scaled[0].array)
    options = {"mirror": mirror, "single_stage": single_stage, "check_facing": check_facing}
    points = plausible_landmarks(model, scaled, array, spacing, options, progress, notice)
    progress(1.0, "done")
    names = model.landmark_names
    return LandmarkSet(names, index_to_physical(image, points), None, "KNEEL landmarks")
