"""Statistical shape model of a preset's landmark configuration: is a detected set of points a plausible
anatomy, at a plausible size?

The training configurations (mm, in the image's column/row axes) are aligned by generalised Procrustes
analysis (translation, rotation and scale; no reflection, so a mirrored configuration is not a plausible
one), and their tangent-space residuals are modelled by probabilistic PCA: the leading modes keep their
variances, the other directions share the mean of the discarded ones. A configuration's Mahalanobis
distance under that Gaussian, and the z-score of its log centroid size, are compared with bounds that
are chosen by k-fold cross-validation over the training configurations (:func:`bounded_shape_model`) and
stored with the model, in its file's config (``shape_model``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from LandmarkCoreLib.errors import ModelFileError

#: share of the tangent-space variance the explicit modes keep
MODE_VARIANCE_FRACTION = 0.95
#: the distance bound is this multiple of the largest held-out distance in cross-validation
DISTANCE_MARGIN = 3.0
#: a film further than this multiple of the largest held-out distance is also tried mirrored
FACING_MARGIN = 1.5
#: plausible sizes: within this many SDs of the training films' log centroid size (4 SD: about ±30 %)
SIZE_BOUND_SD = 4.0


@dataclass(frozen=True)
class ShapeFit:
    """A configuration measured against a :class:`ShapeModel`."""

    distance: float  # Mahalanobis distance of the aligned shape
    size_z: float  # z-score of the log centroid size
    plausible: bool

    def describe(self, model: ShapeModel) -> str:
        return (
            f"shape distance {self.distance:.1f} (plausible ≤ {model.distance_bound:.1f}), "
            f"size {self.size_z:+.1f} SD (plausible within ±{model.size_bound:.1f})"
        )


@dataclass(frozen=True)
class ShapeModel:
    mean: np.ndarray  # (K, 2), centred, unit centroid size
    modes: np.ndarray  # (m, 2K) orthonormal
    variances: np.ndarray  # (m,)
    residual_variance: float
    log_size_mean: float
    log_size_sd: float
    distance_bound: float = np.inf
    size_bound: float = np.inf
    #: a film whose landmarks are further than this is also detected mirrored (the better one is kept)
    facing_bound: float = np.inf

    def measure(self, points_mm: np.ndarray) -> ShapeFit:
        """``points_mm`` (K, 2) against the model."""
        aligned, size = align(points_mm, self.mean)
        offset = (aligned - self.mean).reshape(-1)
        coefficients = self.modes @ offset
        residual = max(float(offset @ offset - coefficients @ coefficients), 0.0)
        squared = float(np.sum(coefficients**2 / self.variances)) + residual / self.residual_variance
        distance = float(np.sqrt(squared))
        size_z = (np.log(size) - self.log_size_mean) / self.log_size_sd
        plausible = distance <= self.distance_bound and abs(size_z) <= self.size_bound
        return ShapeFit(distance, float(size_z), bool(plausible))

    def with_bounds(self, distance_bound: float, size_bound: float, facing_bound: float) -> ShapeModel:
        return ShapeModel(
            self.mean,
            self.modes,
            self.variances,
            self.residual_variance,
            self.log_size_mean,
            self.log_size_sd,
            float(distance_bound),
            float(size_bound),
            float(facing_bound),
        )

    def to_config(self) -> dict:
        return {
            "mean": self.mean.tolist(),
            "modes": self.modes.tolist(),
            "variances": self.variances.tolist(),
            "residual_variance": self.residual_variance,
            "log_size_mean": self.log_size_mean,
            "log_size_sd": self.log_size_sd,
            "distance_bound": self.distance_bound,
            "size_bound": self.size_bound,
            "facing_bound": self.facing_bound,
        }

    @classmethod
    def from_config(cls, config: dict, n_landmarks: int, where: str) -> ShapeModel:
        """The stored model, every value checked (shapes, finite, positive variances and bounds)."""
        try:
            mean = np.asarray(config["mean"], dtype=np.float64)
            modes = np.asarray(config["modes"], dtype=np.float64).reshape(-1, 2 * n_landmarks)
            variances = np.asarray(config["variances"], dtype=np.float64)
            scalars = [
                float(config[k])
                for k in (
                    "residual_variance",
                    "log_size_mean",
                    "log_size_sd",
                    "distance_bound",
                    "size_bound",
                    "facing_bound",
                )
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"{where}: unreadable shape model ({exc})") from None
        positive = np.array([*variances, scalars[0], *scalars[2:]])
        if (
            mean.shape != (n_landmarks, 2)
            or variances.shape != (len(modes),)
            or not all(np.isfinite(v).all() for v in (mean, modes, variances, scalars))
            or not np.all(positive > 0)
        ):
            raise ModelFileError(f"{where}: shape model values out of range")
        return cls(mean, modes, variances, *scalars)


def align(points: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, float]:
    """``points`` (K, 2) centred, scaled to unit centroid size and rotated (no reflection) onto ``target``
    (centred, unit size); also the centroid size of ``points``."""
    centred = np.asarray(points, dtype=np.float64)[:, :2]
    centred = centred - centred.mean(0)
    size = float(np.linalg.norm(centred))
    unit = centred / max(size, 1e-12)
    u, _, vt = np.linalg.svd(unit.T @ target)
    if np.linalg.det(u @ vt) < 0:  # the best reflection-free rotation
        u[:, -1] = -u[:, -1]
    return unit @ (u @ vt), size


def fit_shape_model(shapes_mm: np.ndarray, iterations: int = 10) -> ShapeModel:
    """Shape model (unbounded) of ``shapes_mm`` (N, K, 2): generalised Procrustes, then probabilistic PCA."""
    shapes = np.asarray(shapes_mm, dtype=np.float64)[..., :2]
    mean = shapes[0] - shapes[0].mean(0)
    mean /= np.linalg.norm(mean)
    for _ in range(iterations):
        new_mean = np.stack([align(s, mean)[0] for s in shapes]).mean(0)
        new_mean /= np.linalg.norm(new_mean)
        converged = np.allclose(new_mean, mean, atol=1e-10)
        mean = new_mean
        if converged:
            break
    aligned, sizes = zip(*(align(s, mean) for s in shapes), strict=True)
    aligned, sizes = np.stack(aligned), np.array(sizes)
    offsets = (aligned - mean).reshape(len(shapes), -1)
    # tangent space: 2K coordinates minus the 4 similarity degrees of freedom
    dof = min(offsets.shape[1] - 4, len(shapes) - 1)
    _, singular, vt = np.linalg.svd(offsets, full_matrices=False)
    eigen = singular[:dof] ** 2 / (len(shapes) - 1)
    kept = int(np.searchsorted(np.cumsum(eigen) / eigen.sum(), MODE_VARIANCE_FRACTION) + 1)
    kept = min(kept, dof - 1)
    return ShapeModel(
        mean,
        vt[:kept],
        eigen[:kept],
        float(eigen[kept:].mean()),
        float(np.log(sizes).mean()),
        float(np.log(sizes).std(ddof=1)),
    )


@dataclass(frozen=True)
class ShapeCrossValidation:
    """Held-out Mahalanobis distances of each fold's configurations under the other folds' model."""

    held_out: list[np.ndarray]

    def per_fold(self, statistic) -> np.ndarray:
        return np.array([statistic(d) for d in self.held_out])


def cross_validate(shapes_mm: np.ndarray, folds: int = 5, seed: int = 0) -> ShapeCrossValidation:
    order = np.random.default_rng(seed).permutation(len(shapes_mm))
    held_out = []
    for k in range(folds):
        test = order[k::folds]
        model = fit_shape_model(shapes_mm[np.setdiff1d(order, test)])
        held_out.append(np.array([model.measure(shapes_mm[i]).distance for i in test]))
    return ShapeCrossValidation(held_out)


def bounded_shape_model(shapes_mm: np.ndarray, folds: int = 5) -> tuple[ShapeModel, ShapeCrossValidation]:
    """The shape model of all ``shapes_mm`` with its bounds: distance ``DISTANCE_MARGIN`` (facing:
    ``FACING_MARGIN``) times the largest held-out distance of a ``folds``-fold cross-validation (the
    margin absorbs the detector's own error), size within ``SIZE_BOUND_SD``."""
    validation = cross_validate(np.asarray(shapes_mm, dtype=np.float64), folds)
    largest = max(d.max() for d in validation.held_out)
    model = fit_shape_model(shapes_mm)
    return model.with_bounds(DISTANCE_MARGIN * largest, SIZE_BOUND_SD, FACING_MARGIN * largest), validation


def case_shapes(cases) -> np.ndarray:
    """The landmarks (N, K, 2) of training cases in mm along the image's column and row axes, mirrored
    cases (KNEEL's left knees) mirrored, as the networks see them."""
    from .data import case_points_index, image_geometry

    shapes = []
    for case in cases:
        geometry = image_geometry(case.image_path)
        if case.spacing is not None:
            geometry.SetSpacing(case.spacing)
        spacing = np.array(geometry.GetSpacing()[:2])
        shapes.append(case_points_index(case, geometry) * spacing * [-1.0 if case.mirror else 1.0, 1.0])
    return np.stack(shapes)
