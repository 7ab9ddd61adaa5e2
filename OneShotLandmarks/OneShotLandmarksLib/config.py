"""Settings of training and detection, in physical units (mm, degrees), JSON-able for model files."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from LandmarkCoreLib.errors import InputError
from LandmarkCoreLib.settings import setting


def _from_dict(cls, values: dict[str, Any], what: str):
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(what, f"unknown settings {', '.join(unknown)}")
    return cls(**values)


@dataclass
class TrainingConfig:
    """Algorithm 1. The working grid is an isotropic cube of ``working_spacing_mm``; its size is chosen
    from the SOI radius and ``max_translation_mm`` so that a rotated, translated SOI never leaves the
    slices (the paper's "no missing pixels")."""

    working_spacing_mm: float = setting(1.0, minimum=0.05, maximum=10.0, help="working grid spacing (mm)")
    max_rotation_deg: float = setting(
        180.0, minimum=0.0, maximum=180.0, help="rotation per axis (180 = any pose; targets come in any pose)"
    )
    max_translation_mm: float = setting(3.0, minimum=0.0, maximum=100.0, help="translation per axis (mm)")
    margin_mm: float = setting(1.0, minimum=0.0, maximum=50.0, help="margin around the SOI (mm)")
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
    seed: int = setting(0, minimum=0, maximum=2**31 - 1, help="random seed")
    device: str = setting("auto", choices=("auto", "cpu", "cuda"), help="where training runs")

    def validate(self) -> None:
        positive = (
            "working_spacing_mm",
            "width",
            "learning_rate",
            "batch_size",
            "volumes_per_epoch",
            "max_epochs",
            "patience",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise InputError(f"training setting '{name}'", f"must be > 0, got {getattr(self, name)}")
        if not 0 <= self.max_rotation_deg <= 180 or self.max_translation_mm < 0:
            raise InputError("training settings", "max_rotation_deg must be in [0, 180], translation >= 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainingConfig:
        return _from_dict(cls, values, "training settings")


@dataclass
class DetectionConfig:
    """Algorithm 2 (localization), rotation and registration settings."""

    max_iterations: int = 8
    shift_threshold_mm: float = 0.5
    min_mass_fraction: float = (
        0.1  # joint probability mass / the reference's own mass below -> 'SOI not found'
    )
    min_concentration_fraction: float = 0.25  # of the reference's joint-map concentration; below -> not found
    near_equal_eigen_ratio: float = 1.15  # adjacent eigenvalues closer than this: try both axis orders
    min_pose_similarity: float = 0.5  # best polished NCC below -> PoseNotFoundError (correct: 0.83-0.94)
    polished_candidates: int = 12  # pose candidates (best raw NCC first) polished by rigid registration
    registration_spacing_mm: float = 0.28
    registration_margin_mm: float = 2.0  # patch = reference landmarks' box + margin
    linear_transform: str = "similarity"  # 'rigid' (paper) or 'similarity' (rigid + isotropic scale)
    linear_shrink_factors: list[int] = field(default_factory=lambda: [4, 2, 1])
    linear_iterations: int = 100
    demons_spacings_mm: list[float] = field(default_factory=lambda: [0.56, 0.28])
    demons_iterations: list[int] = field(default_factory=lambda: [40, 20])
    demons_smoothing_voxels: float = 1.5
    inference_batch: int = 64

    def validate(self) -> None:
        if self.linear_transform not in ("rigid", "similarity"):
            raise InputError("detection setting 'linear_transform'", "must be 'rigid' or 'similarity'")
        if len(self.demons_spacings_mm) != len(self.demons_iterations):
            raise InputError(
                "detection settings", "demons_spacings_mm and demons_iterations differ in length"
            )
        if self.max_iterations < 1 or self.shift_threshold_mm <= 0 or self.registration_spacing_mm <= 0:
            raise InputError("detection settings", "iterations, threshold and spacing must be positive")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DetectionConfig:
        return _from_dict(cls, values, "detection settings")
