"""Settings that scale with the structure of interest, and the cost of a run before it starts.

Lengths left at None are derived from the SOI's bounding-sphere radius ``r`` (mm) and the reference's finest
voxel size ``v`` (mm) through the scale ``f = r / 11.6 mm`` (rounded to two significant digits), so that
every grid holds about the same number of voxels per structure as the mouse skull, where the defaults were
tuned (C57BL6_J_: r = 11.57 mm, v = 0.141 mm, f = 1):

    working spacing  max(1.0 f, v)          registration spacing  max(v, min(2 v, 0.28 f))
    max translation  3.0 f                  registration margin   2.0 f
    margin           1.0 f                  demons spacings       [2, 1] x registration spacing
    shift threshold  0.5 f

Counts (epochs, slices per batch, iterations) are per structure, so they do not change with the scale; the
working cube's edge in voxels follows from the lengths (:func:`.sampling.cube_size`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace

import numpy as np
from LandmarkCoreLib.errors import InputError

from .config import DetectionConfig, TrainingConfig

MOUSE_SOI_RADIUS_MM = 11.6
#: multiply-accumulates per pixel of the shallow U-Net, per width^2 (see unet.py: 27 + 54/4 + 54)
UNET_MACS_PER_PIXEL_PER_WIDTH2 = 94.5
#: floats kept per pixel and per width for the backward pass (activations and their gradients)
UNET_TRAINING_FLOATS_PER_PIXEL_PER_WIDTH = 46
#: measured: 25 epochs of width 32, cube 36 in 112 s on 2 threads of this project's Xeon -> ~30 GMAC/s;
#: a conservative 10 GMAC/s per thread
MACS_PER_SECOND_PER_THREAD = 10e9
#: bytes per voxel of a demons level (images, field, update, smoothing buffers)
DEMONS_BYTES_PER_VOXEL = 120


@dataclass(frozen=True)
class Scale:
    soi_radius_mm: float
    voxel_mm: float

    @property
    def factor(self) -> float:
        raw = self.soi_radius_mm / MOUSE_SOI_RADIUS_MM
        return float(f"{raw:.2g}")

    def record(self) -> dict[str, float]:
        return {"soi_radius_mm": self.soi_radius_mm, "voxel_mm": self.voxel_mm, "factor": self.factor}


def _fill(config, values: dict[str, object]) -> tuple[object, list[str]]:
    missing = {k: v for k, v in values.items() if getattr(config, k) is None}
    return replace(config, **missing), sorted(missing)


def derive_training(config: TrainingConfig, scale: Scale) -> tuple[TrainingConfig, list[str]]:
    """``config`` with every None length derived from ``scale``; and the names derived."""
    f = scale.factor
    return _fill(
        config,
        {
            "working_spacing_mm": round(max(1.0 * f, scale.voxel_mm), 4),
            "max_translation_mm": round(3.0 * f, 4),
            "margin_mm": round(1.0 * f, 4),
        },
    )


def derive_detection(config: DetectionConfig, scale: Scale) -> tuple[DetectionConfig, list[str]]:
    f, v = scale.factor, scale.voxel_mm
    spacing = config.registration_spacing_mm or round(max(v, min(2 * v, 0.28 * f)), 4)
    return _fill(
        config,
        {
            "shift_threshold_mm": round(0.5 * f, 4),
            "registration_spacing_mm": spacing,
            "registration_margin_mm": round(2.0 * f, 4),
            "demons_spacings_mm": [round(2 * spacing, 4), spacing],
        },
    )


def memory_limit_bytes(config: TrainingConfig) -> float:
    if config.memory_limit_gb is not None:
        return config.memory_limit_gb * 2**30
    return 0.75 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


@dataclass(frozen=True)
class Cost:
    training_bytes: float
    epoch_seconds: float
    detection_bytes: float
    registration_voxels: int

    def describe(self, config: TrainingConfig) -> str:
        return (
            f"estimated training {self.training_bytes / 2**30:.2f} GB, {self.epoch_seconds:.0f} s per epoch "
            f"(at most {config.max_epochs} epochs), detection {self.detection_bytes / 2**30:.2f} GB"
        )


def estimate_cost(
    config: TrainingConfig,
    detection: DetectionConfig,
    cube: int,
    image_voxels: int,
    landmark_extent_mm: np.ndarray,
    threads: int,
) -> Cost:
    """Memory and time of training and detection from the resolved settings (before any work)."""
    pixels = cube * cube
    slices_per_epoch = config.volumes_per_epoch * 3 * cube + 3 * cube  # training volumes + validation
    macs = 3 * slices_per_epoch * pixels * UNET_MACS_PER_PIXEL_PER_WIDTH2 * config.width**2
    activations = config.batch_size * pixels * UNET_TRAINING_FLOATS_PER_PIXEL_PER_WIDTH * config.width * 4
    patches = 4 * 3 * cube**3 * 4  # slices and labels of a training and the validation volume
    images = 6 * image_voxels * 4  # reference, validation, masks and their prepared copies
    box = np.asarray(landmark_extent_mm) + 2 * detection.registration_margin_mm
    voxels = int(np.prod(np.ceil(box / detection.registration_spacing_mm) + 1))
    inference = detection.inference_batch * pixels * 4 * config.width * 4 + 6 * cube**3 * 4
    return Cost(
        training_bytes=activations + patches + images + 0.4 * 2**30,
        epoch_seconds=macs / (MACS_PER_SECOND_PER_THREAD * max(threads, 1)),
        detection_bytes=max(voxels * DEMONS_BYTES_PER_VOXEL, inference) + 2 * image_voxels * 4 + 0.4 * 2**30,
        registration_voxels=voxels,
    )


def refuse_if_too_costly(cost: Cost, config: TrainingConfig) -> None:
    """InputError naming the setting to change when the run would not fit memory or time."""
    limit = memory_limit_bytes(config)
    hint = "raise working_spacing_mm (--working-spacing-mm) or lower width / batch_size"
    if max(cost.training_bytes, cost.detection_bytes) > limit:
        which = "training" if cost.training_bytes >= cost.detection_bytes else "detection"
        if which == "detection":
            hint = "raise registration_spacing_mm (--registration-spacing-mm)"
        raise InputError(
            "training settings",
            f"{which} would need about {max(cost.training_bytes, cost.detection_bytes) / 2**30:.1f} GB, more "
            f"than the limit of {limit / 2**30:.1f} GB (memory_limit_gb): {hint}",
        )
    minutes = cost.epoch_seconds * config.max_epochs / 60
    if minutes > config.time_limit_minutes:
        raise InputError(
            "training settings",
            f"training would take about {math.ceil(minutes)} min ({cost.epoch_seconds:.0f} s per epoch x "
            f"{config.max_epochs} epochs), more than time_limit_minutes = {config.time_limit_minutes:g}: "
            f"{hint}, or lower max_epochs",
        )
