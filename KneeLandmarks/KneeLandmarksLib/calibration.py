"""Calibrate a knee-model's plausibility checks on its training films and store them in its file: the
shape model with cross-validated bounds (``shape_model``) and two stage-2 heatmap confidences measured on
the training films as given and mirrored (a facing direction the networks never saw; on the ISBI training
films the film as given was always the more confident, by 1.34 times or more):

- ``facing_confidence``, between the two: a film below it is also detected mirrored, the more confident
  result is kept;
- ``min_heatmap_confidence``, half the 1st percentile of the films as given: below it a result is refused;
- ``max_rescaled_confidence_ratio``, ``PIXEL_SIZE_MARGIN`` times the largest ratio, over the films, of the
  confidence with a film read at half or double its pixel size (as given or mirrored) to the one as
  given: above it a result is refused as read at a wrong pixel size.

    from KneeLandmarksLib.calibration import calibrate_model_file
    report = calibrate_model_file("model.pt", resolve_training_cases("isbi:train"), "model.pt")
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from LandmarkCoreLib.modelfile import load_model_file, save_model_file

from .data import TrainingCase, scale_array_to
from .image_content import PIXEL_SIZE_FACTORS
from .model_file import MODEL_KIND
from .pipeline import KneeModel, confidence_at_pixel_size, flipped, locate_landmarks, prepare_image
from .shape_model import ShapeCrossValidation, bounded_shape_model, case_shapes

#: the pixel-size bound is this multiple of the largest ratio on the training films (the networks saw them)
PIXEL_SIZE_MARGIN = 1.5


@dataclass(frozen=True)
class Calibration:
    validation: ShapeCrossValidation
    confidence_as_given: np.ndarray  # per training film
    confidence_mirrored: np.ndarray
    facing_confidence: float
    min_confidence: float
    rescaled_ratios: np.ndarray  # per training film: confidence at half or double the pixel size / own
    max_rescaled_ratio: float


def stage2_confidences(
    model: KneeModel, cases: list[TrainingCase]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stage 2's heatmap confidence on each case's film as given and mirrored (no refinement), and the
    largest ratio to the first of the confidence with the film read at its pixel size times
    ``PIXEL_SIZE_FACTORS`` (as given or mirrored)."""
    from LandmarkCoreLib.images import read_image

    given, mirrored, ratios = [], [], []
    options = {"mirror": False, "single_stage": False}
    for case in cases:
        image, array = prepare_image(read_image(case.image_path, "training image", dimension=2))
        spacing = case.spacing or tuple(image.GetSpacing()[:2])
        scaled = scale_array_to(array, spacing, [model.preset.stage2.spacing_mm])
        options["mirror"] = case.mirror
        given.append(locate_landmarks(model, scaled, options, lambda *_: None).confidence)
        mirrored.append(locate_landmarks(model, [flipped(scaled[0])], options, lambda *_: None).confidence)
        rescaled = [
            confidence_at_pixel_size(model, array, np.multiply(spacing, f), options)
            for f in PIXEL_SIZE_FACTORS
        ]
        ratios.append(max(rescaled) / given[-1])
    return np.array(given), np.array(mirrored), np.array(ratios)


def calibrate_model_file(
    model_path: str | os.PathLike, cases: list[TrainingCase], output: str | os.PathLike
) -> Calibration:
    """Write ``model_path`` with plausibility bounds from ``cases`` (its training films) to ``output``.
    The facing bound is the geometric mean of the films' 1st percentile as given and 99th percentile
    mirrored."""
    stored = load_model_file(model_path, MODEL_KIND)
    shape, validation = bounded_shape_model(case_shapes(cases))
    given, mirrored, ratios = stage2_confidences(KneeModel.load(model_path), cases)
    facing = float(np.sqrt(np.percentile(given, 1) * np.percentile(mirrored, 99)))
    floor = float(0.5 * np.percentile(given, 1))
    largest_ratio = float(PIXEL_SIZE_MARGIN * ratios.max())
    stored.config["shape_model"] = shape.to_config()
    stored.config["facing_confidence"] = facing
    stored.config["min_heatmap_confidence"] = floor
    stored.config["max_rescaled_confidence_ratio"] = largest_ratio
    save_model_file(output, stored)
    return Calibration(validation, given, mirrored, facing, floor, ratios, largest_ratio)
