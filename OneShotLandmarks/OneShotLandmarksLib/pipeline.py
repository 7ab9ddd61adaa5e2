"""Public API: train a one-shot model from one annotated image, detect landmarks in new images.

    model = train_model(reference, reference_landmarks, reference_soi, validation, validation_soi, config)
    result = detect_landmarks(model, target, method="oneshot")   # or "registration" (naive baseline)

Images are SimpleITK images (LPS, mm); landmarks are LandmarkCoreLib LandmarkSet (LPS, mm).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch
from LandmarkCoreLib.device import select_device
from LandmarkCoreLib.errors import InputError, LandmarkError
from LandmarkCoreLib.images import points_inside
from LandmarkCoreLib.landmarks import LandmarkSet
from LandmarkCoreLib.progress import CancelToken, ProgressCallback, no_progress
from LandmarkCoreLib.segmentations import resample_mask

from .config import DetectionConfig, TrainingConfig
from .localization import concentration, joint_probability, localize, network_predictor
from .model import OneShotModel
from .orientation import candidate_rotations, normalised_cross_correlation, second_moments
from .plausibility import handedness_warnings, require_plausible_scale, symmetry_mirror
from .registration import linear_registration, register, transport_points
from .sampling import (
    PatchGrid,
    apply_pose,
    cube_size,
    image_axes,
    mask_centre_and_radius,
    pose_transform,
    prepare_image,
    resample,
)
from .scaling import Scale, derive_detection, derive_training, estimate_cost, refuse_if_too_costly
from .training import TrainingData, train_network

METHODS = ("oneshot", "registration")
#: a one-shot target whose final registration correlates less than this with the reference did not find
#: the structure (measured: correct targets 0.56-0.78 on the mouse skulls, 0.97-0.99 on the human template;
#: the wrong poses of a tiny test model on posed copies of the template, 44-47 mm off: 0.15-0.27)
MIN_REGISTRATION_CORRELATION = 0.3


class PoseNotFoundError(LandmarkError):
    """Detection ran but its answer is not credible (target does not resemble the reference in any pose, or
    the landmarks left the target image): a recorded failure for that target, never a silent wrong answer."""


@dataclass
class DetectionResult:
    landmarks: LandmarkSet  # in the target's physical space (LPS mm), the reference's labels
    method: str
    centre: list[float]  # SOI centre found in the target (mm)
    rotation: list[list[float]]  # reference directions -> target directions
    centre_iterations: list[dict] = field(default_factory=list)
    rotation_scores: dict[str, Any] = field(default_factory=dict)  # NCC per candidate: raw, polished
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    qc: dict[str, Any] = field(default_factory=dict)  # 'patch' (target in reference frame), 'patch_points'
    warnings: list[str] = field(default_factory=list)  # a result written, but to be checked (and why)

    def log(self) -> dict[str, Any]:
        """JSON-able record of the run (no images)."""
        return {
            "method": self.method,
            "centre": self.centre,
            "rotation": self.rotation,
            "centre_iterations": self.centre_iterations,
            "rotation_scores": self.rotation_scores,
            "timings": self.timings,
            "linear_metric": self.qc.get("linear_metric"),
            "warnings": self.warnings,
        }


def _require_3d(image: sitk.Image, what: str) -> None:
    if not isinstance(image, sitk.Image) or image.GetDimension() != 3:
        dim = image.GetDimension() if isinstance(image, sitk.Image) else type(image).__name__
        raise InputError(what, f"must be a 3D image, got {dim}{'D' if isinstance(dim, int) else ''}")


def _fov_centre(image: sitk.Image) -> np.ndarray:
    return np.asarray(image.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in image.GetSize()]))


def _box_grid(
    points: np.ndarray, axes: np.ndarray, margin: float, spacing: float, min_voxels: int
) -> sitk.Image:
    """A grid along ``axes`` covering ``points`` plus ``margin`` mm, at least ``min_voxels`` per axis."""
    local = np.asarray(points) @ axes
    half = np.maximum((np.ptp(local, axis=0) + 2 * margin) / 2, min_voxels * spacing / 2)
    middle = (local.min(0) + local.max(0)) / 2
    low, high = middle - half, middle + half
    size = np.ceil((high - low) / spacing).astype(int) + 1
    grid = sitk.Image([int(s) for s in size], sitk.sitkUInt8)
    grid.SetOrigin([float(v) for v in axes @ low])
    grid.SetSpacing([float(spacing)] * 3)
    grid.SetDirection([float(v) for v in axes.ravel()])
    return grid


def _checked_mask(mask: sitk.Image, image: sitk.Image, what: str) -> sitk.Image:
    _require_3d(mask, what)
    mask = resample_mask(mask, image)
    if not np.any(sitk.GetArrayViewFromImage(mask)):
        raise InputError(what, "has no foreground voxels (empty SOI mask)")
    return mask


def train_model(
    reference: sitk.Image,
    reference_landmarks: LandmarkSet,
    reference_soi: sitk.Image,
    validation: sitk.Image,
    validation_soi: sitk.Image,
    config: TrainingConfig | None = None,
    detection: DetectionConfig | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
    checkpoint_path: str | os.PathLike | None = None,
) -> OneShotModel:
    """Algorithm 1 plus everything detection needs from the reference; resumable via ``checkpoint_path``."""
    config, detection = config or TrainingConfig(), detection or DetectionConfig()
    config.validate()
    detection.validate()
    _require_3d(reference, "reference image")
    _require_3d(validation, "validation image")
    if reference_landmarks.dim != 3 or len(reference_landmarks) == 0:
        raise InputError("reference landmarks", "need at least one 3D landmark")
    outside = ~points_inside(reference, reference_landmarks.points)
    if outside.any():
        labels = [reference_landmarks.labels[i] for i in np.flatnonzero(outside)]
        raise InputError("reference landmarks", f"outside the reference image: {', '.join(labels)}")
    reference_soi = _checked_mask(reference_soi, reference, "reference SOI mask")
    validation_soi = _checked_mask(validation_soi, validation, "validation SOI mask")
    started = time.perf_counter()
    ref_centre, ref_radius = mask_centre_and_radius(reference_soi)
    val_centre, val_radius = mask_centre_and_radius(validation_soi)
    scale = Scale(ref_radius, float(min(reference.GetSpacing())))
    config, derived_training = derive_training(config, scale)
    detection, derived_detection = derive_detection(detection, scale)
    config.validate()
    detection.validate()
    spacing = config.working_spacing_mm
    size = cube_size(max(ref_radius, val_radius), config.max_translation_mm, config.margin_mm, spacing)
    cost = estimate_cost(
        config,
        detection,
        size,
        int(np.prod(reference.GetSize())),
        np.ptp(reference_landmarks.points, axis=0),
        torch.get_num_threads(),
    )
    refuse_if_too_costly(cost, config)
    soi_float = sitk.Cast(reference_soi, sitk.sitkFloat32)
    data = TrainingData(
        prepare_image(reference, spacing),
        soi_float,
        ref_centre,
        prepare_image(validation, spacing),
        sitk.Cast(validation_soi, sitk.sitkFloat32),
        val_centre,
        size,
    )
    net, state = train_network(data, config, progress, cancel, checkpoint_path)
    axes = image_axes(reference)
    grid = PatchGrid(ref_centre, axes, spacing, (size,) * 3)
    reference_patch = resample(data.reference, grid)
    predictor = network_predictor(net, select_device(config.device), detection.inference_batch)
    reference_joint = joint_probability(predictor, reference_patch)
    reference_soi_patch = resample(soi_float, grid) > 0.5
    registration_grid = _box_grid(
        reference_landmarks.points,
        axes,
        detection.registration_margin_mm,
        detection.registration_spacing_mm,
        4 * max(detection.linear_shrink_factors),  # every pyramid level keeps 4 voxels for its smoothing
    )
    prepared_fine = prepare_image(reference, detection.registration_spacing_mm)
    return OneShotModel(
        training=config,
        detection=detection,
        weights={k: v.cpu() for k, v in net.state_dict().items()},
        cube_size=size,
        reference_centre=ref_centre,
        reference_axes=axes,
        reference_fov_offset=(ref_centre - _fov_centre(reference)) @ axes,
        reference_joint_mass_mm3=float(reference_joint.sum()) * spacing**3,
        reference_joint_concentration=concentration(reference_joint, int(reference_soi_patch.sum())),
        reference_patch=reference_patch,
        reference_soi_patch=reference_soi_patch,
        registration_patch=sitk.Resample(
            prepared_fine, registration_grid, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32
        ),
        landmarks=reference_landmarks,
        reference_mirror=symmetry_mirror(reference_patch, reference_soi_patch, grid),
        derivation={**scale.record(), "derived": derived_training + derived_detection, "cost": asdict(cost)},
        training_summary={
            "epochs": state.epoch,
            "best_epoch": state.best_epoch,
            "best_validation_loss": state.best_loss,
            "history": state.history,
            "training_seconds": state.seconds,
            "total_seconds": time.perf_counter() - started,
        },
    )


def _similarity(
    model: OneShotModel, prepared: sitk.Image, grid: PatchGrid, rotation: np.ndarray, centre: np.ndarray
) -> float:
    """Normalised cross-correlation of the target seen through a pose with the reference patch."""
    moved = resample(prepared, grid, pose_transform(rotation, model.reference_centre, centre))
    return normalised_cross_correlation(moved, model.reference_patch)


def _pose_patches(
    model: OneShotModel, prepared: sitk.Image, grid: PatchGrid, rotation: np.ndarray, centre: np.ndarray
) -> tuple[sitk.Image, sitk.Image]:
    """The target seen through a pose on the reference's working grid, and the reference patch."""
    reference_image = sitk.GetImageFromArray(model.reference_patch.astype(np.float32))
    reference_image.CopyInformation(grid.image())
    fixed = sitk.Resample(prepared, reference_image, pose_transform(rotation, model.reference_centre, centre))
    return fixed, reference_image


def _affine_scales(
    model: OneShotModel, prepared: sitk.Image, grid: PatchGrid, rotation: np.ndarray, centre: np.ndarray
) -> np.ndarray:
    """Singular values (ascending) of the affine map taking the reference onto the posed target: how much
    larger the target's structure is along its principal directions."""
    fixed, reference_image = _pose_patches(model, prepared, grid, rotation, centre)
    settings = replace(
        model.detection, linear_transform="affine", linear_shrink_factors=[2, 1], linear_iterations=100
    )
    transform, _ = linear_registration(fixed, reference_image, settings)
    matrix = np.asarray(sitk.AffineTransform(transform).GetMatrix()).reshape(3, 3)
    return np.sort(1 / np.linalg.svd(matrix, compute_uv=False))


def _refine_pose(
    model: OneShotModel,
    prepared: sitk.Image,
    grid: PatchGrid,
    rotation: np.ndarray,
    centre: np.ndarray,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, float]:
    """A candidate pose polished by a quick rigid registration on the working grid, and its similarity
    (normalised cross-correlation with the reference patch), so that candidates are compared at their best."""
    fixed, reference_image = _pose_patches(model, prepared, grid, rotation, centre)
    settings = replace(
        model.detection, linear_transform="rigid", linear_shrink_factors=[2, 1], linear_iterations=60
    )
    transform, _ = linear_registration(fixed, reference_image, settings, seed)
    inverse = transform.GetInverse()  # reference -> fixed (= reference frame of the target patch)
    offset = np.asarray(inverse.TransformPoint((0.0, 0.0, 0.0)))
    matrix = np.column_stack([np.asarray(inverse.TransformPoint(tuple(e))) - offset for e in np.eye(3)])
    new_rotation = rotation @ matrix
    new_centre = centre + rotation @ (matrix @ model.reference_centre + offset - model.reference_centre)
    return new_rotation, new_centre, _similarity(model, prepared, grid, new_rotation, new_centre)


def _estimate_pose(
    model: OneShotModel,
    target: sitk.Image,
    device: str,
    progress: ProgressCallback,
    cancel: CancelToken | None,
    timings: dict[str, float],
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Stages 2 and 3: SOI centre in the target and the rotation reference -> target."""
    cfg, spacing = model.detection, model.training.working_spacing_mm
    clock = time.perf_counter()
    prepared = prepare_image(target, spacing)
    target_axes = image_axes(target)
    start = _fov_centre(target) + target_axes @ model.reference_fov_offset
    predictor = network_predictor(model.network(), select_device(device), cfg.inference_batch)
    grid = PatchGrid(start, target_axes, spacing, (model.cube_size,) * 3)
    found = localize(
        predictor,
        prepared,
        start,
        grid,
        cfg.max_iterations,
        cfg.shift_threshold_mm,
        cfg.min_mass_fraction * model.reference_joint_mass_mm3,
        int(model.reference_soi_patch.sum()),
        cfg.min_concentration_fraction * model.reference_joint_concentration,
        progress,
        cancel,
    )
    timings["localization"] = time.perf_counter() - clock
    clock = time.perf_counter()
    reference_grid = PatchGrid(model.reference_centre, model.reference_axes, spacing, (model.cube_size,) * 3)
    _, reference_cov = second_moments(
        model.reference_soi_patch.astype(float), reference_grid.voxel_coordinates()
    )
    searches = [(found.probability, found.grid)]
    if not found.converged and len(found.iterations) > 1:  # drifted: the first patch competes too
        searches.append((found.start_probability, found.start_grid))
    poses, scores = [], []
    for probability, grid in searches:
        pose, score = _best_pose(model, prepared, reference_grid, reference_cov, probability, grid, seed)
        poses.append(pose)
        scores.append(score)
    best = int(np.argmax([pose[2] for pose in poses]))
    rotation, target_centre, similarity = poses[best]
    timings["rotation"] = time.perf_counter() - clock
    rotation_scores = {**scores[0], "converged": found.converged}
    if len(scores) > 1:
        rotation_scores.update(from_start=scores[1], chosen="start" if best else "final")
    minimum = cfg.min_pose_similarity
    if similarity < minimum:
        raise PoseNotFoundError(
            f"no pose of the target matches the reference: best normalised cross-correlation "
            f"{similarity:.2f} < {minimum:.2f} (correct poses score 0.8-0.95; localization "
            f"{'converged' if found.converged else 'did not converge'} in {len(found.iterations)} iterations)"
        )
    scales = _affine_scales(model, prepared, reference_grid, rotation, target_centre)
    rotation_scores["scale_ratios"] = scales.tolist()
    require_plausible_scale(scales, cfg.max_scale_ratio)
    info = {"centre_iterations": found.iterations, "rotation_scores": rotation_scores}
    return target_centre, rotation, info


def _best_pose(
    model: OneShotModel,
    prepared: sitk.Image,
    reference_grid: PatchGrid,
    reference_cov: np.ndarray,
    probability: np.ndarray,
    grid: PatchGrid,
    seed: int,
) -> tuple[tuple[np.ndarray, np.ndarray, float], dict]:
    """Stage 3 on one joint map: principal-axes candidates, the best raw ones polished, most similar wins."""
    cfg = model.detection
    target_centre, target_cov = second_moments(probability, grid.voxel_coordinates())
    candidates = candidate_rotations(reference_cov, target_cov, cfg.near_equal_eigen_ratio)
    raw_scores = [_similarity(model, prepared, reference_grid, r, target_centre) for r in candidates]
    shortlist = np.argsort(raw_scores)[::-1][: cfg.polished_candidates]
    refined = [
        _refine_pose(model, prepared, reference_grid, candidates[i], target_centre, seed) for i in shortlist
    ]
    scores = {
        "raw": raw_scores,
        "polished": {int(i): pose[2] for i, pose in zip(shortlist, refined, strict=True)},
    }
    return max(refined, key=lambda pose: pose[2]), scores


def _mirrored_correlation(
    model: OneShotModel, prepared: sitk.Image, rotation: np.ndarray, centre: np.ndarray, seed: int
) -> float:
    """Correlation of the target's linear registration through the reference's symmetry reflection."""
    pose = pose_transform(rotation @ model.reference_mirror, model.reference_centre, centre)
    fixed = sitk.Resample(prepared, model.registration_patch, pose, sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    return -linear_registration(fixed, model.registration_patch, model.detection, seed)[1]


def require_inside_target(landmarks: np.ndarray, target: sitk.Image, labels: list[str]) -> None:
    outside = ~points_inside(target, landmarks)
    if outside.any():
        names = ", ".join(labels[i] for i in np.flatnonzero(outside)[:10])
        raise PoseNotFoundError(
            f"{int(outside.sum())} of {len(labels)} detected landmarks fall outside the target image "
            f"({names}{', ...' if outside.sum() > 10 else ''}): the registration did not find the structure"
        )


def detect_landmarks(
    model: OneShotModel,
    target: sitk.Image,
    method: str = "oneshot",
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
    device: str = "auto",
    seed: int = 0,
) -> DetectionResult:
    """Landmarks of ``model`` in ``target``. Raises SOINotFoundError (a LandmarkError) when the structure of
    interest is absent, PoseNotFoundError when no pose resembles the reference or landmarks leave the
    target image, InputError for unusable input, Cancelled when ``cancel`` is set. ``seed`` fixes the
    random metric sampling of the linear registrations (results are deterministic for a given seed)."""
    if method not in METHODS:
        raise InputError("detection method", f"'{method}' is not one of {', '.join(METHODS)}")
    _require_3d(target, "target image")
    timings: dict[str, float] = {}
    started = time.perf_counter()
    if method == "oneshot":
        centre, rotation, info = _estimate_pose(model, target, device, progress, cancel, timings, seed)
    else:
        centre, rotation, info = model.reference_centre.copy(), np.eye(3), {}
    clock = time.perf_counter()
    fixed_grid = model.registration_patch
    pose = pose_transform(rotation, model.reference_centre, centre)
    prepared = prepare_image(target, model.detection.registration_spacing_mm)
    fixed = sitk.Resample(prepared, fixed_grid, pose, sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    registered = register(fixed, model.registration_patch, model.detection, progress, cancel, seed)
    timings["registration"] = time.perf_counter() - clock
    if method == "oneshot" and -registered.metric < MIN_REGISTRATION_CORRELATION:
        raise PoseNotFoundError(
            f"the registration did not find the structure: correlation with the reference "
            f"{-registered.metric:.2f} < {MIN_REGISTRATION_CORRELATION} (correct targets 0.56-0.99)"
        )
    warnings = []
    if method == "oneshot" and model.detection.check_handedness:
        clock = time.perf_counter()
        mirrored = _mirrored_correlation(model, prepared, rotation, centre, seed)
        info["rotation_scores"]["handedness"] = {"as_read": -registered.metric, "mirrored": mirrored}
        timings["handedness"] = time.perf_counter() - clock
        warnings = handedness_warnings(-registered.metric, mirrored)
    patch_points = transport_points(model.landmarks.points, registered)
    points = apply_pose(patch_points, rotation, model.reference_centre, centre)
    require_inside_target(points, target, model.landmarks.labels)
    timings["total"] = time.perf_counter() - started
    progress(1.0, "done")
    landmarks = LandmarkSet(list(model.landmarks.labels), points, model.landmarks.descriptions)
    return DetectionResult(
        landmarks,
        method,
        centre.tolist(),
        rotation.tolist(),
        info.get("centre_iterations", []),
        info.get("rotation_scores", {}),
        timings,
        {"patch": fixed, "patch_points": patch_points, "linear_metric": registered.metric},
        warnings,
    )
