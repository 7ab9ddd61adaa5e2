"""Settings of training and detection, in physical units (mm, degrees), JSON-able for model files.

Every length left at None is derived from the structure of interest (SOI) and the reference's voxel size by
:mod:`.scaling` when training starts (the mouse-skull figures are the special case of a 11.6 mm skull and
0.141 mm voxels); an explicit value overrides. Model files store the resolved values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from LandmarkCoreLib.errors import InputError
from LandmarkCoreLib.settings import (
    fraction_setting,
    seed_setting,
    setting,
    settings_from_dict,
    settings_to_dict,
    validate_settings,
)


def derived_length(minimum: float, maximum: float, what: str, mouse: str) -> Any:
    """A length in mm that None leaves to :mod:`.scaling`; ``mouse``: its value for the mouse skull."""
    return setting(
        None,
        minimum=minimum,
        maximum=maximum,
        none_means="derived from the SOI size and voxel size",
        help=f"{what} (mm; mouse skull: {mouse})",
    )


@dataclass
class TrainingConfig:
    """Algorithm 1. The working grid is an isotropic cube of ``working_spacing_mm``; its size is chosen
    from the SOI radius and ``max_translation_mm`` so that a rotated, translated SOI never leaves the
    slices (the paper's "no missing pixels")."""

    working_spacing_mm: float | None = derived_length(0.05, 50.0, "working grid spacing", "1.0")
    max_rotation_deg: float = setting(
        180.0, minimum=0.0, maximum=180.0, help="rotation per axis (180 = any pose; targets come in any pose)"
    )
    max_translation_mm: float | None = derived_length(0.0, 500.0, "translation per axis", "3.0")
    margin_mm: float | None = derived_length(0.0, 500.0, "margin around the SOI", "1.0")
    width: int = setting(64, minimum=4, maximum=256, help="U-Net channels at full resolution (paper: 64)")
    learning_rate: float = setting(
        1e-3, minimum=1e-6, maximum=1.0, help="Adam learning rate (paper: 0.1 in TF; see README)"
    )
    lr_decay_per_epoch: float = setting(0.95, minimum=0.5, maximum=1.0, help="learning-rate factor per epoch")
    batch_size: int = setting(32, minimum=1, maximum=1024, help="slices per batch")
    volumes_per_epoch: int = setting(
        3,
        minimum=1,
        maximum=1000,
        help="random (R, T) resamplings per epoch, all slices of 3 directions each",
    )
    max_epochs: int = setting(25, minimum=1, maximum=10000, help="training epochs at most")
    patience: int = setting(4, minimum=1, maximum=1000, help="epochs without validation gain before stopping")
    seed: int = seed_setting()
    device: str = setting("auto", choices=("auto", "cpu", "cuda"), help="where training runs")
    memory_limit_gb: float | None = setting(
        None,
        minimum=0.1,
        maximum=4096.0,
        none_means="75 % of RAM",
        help="refuse settings estimated above this",
    )
    time_limit_minutes: float = setting(
        240.0, minimum=0.1, maximum=100000.0, help="refuse training estimated to take longer than this"
    )

    def validate(self) -> None:
        validate_settings(self, "training setting")

    def to_dict(self) -> dict[str, Any]:
        return settings_to_dict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainingConfig:
        return settings_from_dict(cls, values, "training setting")


@dataclass
class DetectionConfig:
    """Algorithm 2 (localization), rotation, plausibility and registration settings."""

    max_iterations: int = setting(8, minimum=1, maximum=100, help="localization iterations at most")
    shift_threshold_mm: float | None = derived_length(
        1e-3, 100.0, "localization stops below this shift", "0.5"
    )
    min_mass_fraction: float = fraction_setting(
        0.1, help="joint probability mass / the reference's below this: SOI not found"
    )
    min_concentration_fraction: float = fraction_setting(
        0.25, help="of the reference's joint-map concentration; below: not found"
    )
    near_equal_eigen_ratio: float = setting(
        1.15, minimum=1.0, maximum=10.0, help="adjacent eigenvalues closer than this: try both axis orders"
    )
    min_pose_similarity: float = setting(
        0.5,
        minimum=-1.0,
        maximum=1.0,
        help="best polished NCC below this: no pose found (correct: 0.83-0.94)",
    )
    max_scale_ratio: float = setting(
        1.5, minimum=1.0, maximum=100.0, help="target SOI extent / reference's, per principal axis, at most"
    )
    check_handedness: bool = setting(True, help="refuse a target whose anatomy is mirrored (wrong header)")
    polished_candidates: int = setting(
        12, minimum=1, maximum=48, help="pose candidates polished by registration"
    )
    registration_spacing_mm: float | None = derived_length(0.01, 50.0, "registration grid spacing", "0.28")
    registration_margin_mm: float | None = derived_length(
        0.0, 500.0, "margin around the landmarks' box", "2.0"
    )
    linear_transform: str = setting(
        "similarity",
        choices=("rigid", "similarity", "affine"),
        help="'rigid' (paper), 'similarity' (+ isotropic scale) or 'affine'",
    )
    linear_shrink_factors: list[int] = setting([4, 2, 1], minimum=1, maximum=32, help="linear pyramid levels")
    linear_iterations: int = setting(100, minimum=1, maximum=10000, help="linear optimiser iterations")
    demons_spacings_mm: list[float] | None = derived_length(0.01, 100.0, "demons levels", "0.56 0.28")
    demons_iterations: list[int] = setting(
        [40, 20], minimum=0, maximum=1000, help="demons iterations per level"
    )
    demons_smoothing_voxels: float = setting(1.5, minimum=0.1, maximum=10.0, help="demons field smoothing")
    inference_batch: int = setting(64, minimum=1, maximum=4096, help="slices per network call in detection")

    def validate(self) -> None:
        validate_settings(self, "detection setting")
        if self.demons_spacings_mm is not None and len(self.demons_spacings_mm) != len(
            self.demons_iterations
        ):
            raise InputError(
                "detection settings", "demons_spacings_mm and demons_iterations differ in length"
            )

    def to_dict(self) -> dict[str, Any]:
        return settings_to_dict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DetectionConfig:
        config = settings_from_dict(cls, values, "detection setting")
        config.validate()
        return config
