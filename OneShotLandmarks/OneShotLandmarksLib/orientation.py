"""Rotation offset from the inertia (second-moment) matrices of the reference SOI and the target's
joint probability map (Sec. 2.3).

Eigenvectors are sorted by eigenvalue and matched. Each eigenvector's sign is ambiguous, so every proper
rotation (det +1) consistent with the axes is a candidate (4 of them); when two adjacent eigenvalues are
nearly equal their axes are also tried in swapped order. The caller picks the candidate whose rotated
target patch, after a quick rigid polish, is most similar to the reference patch (normalised
cross-correlation), so a symmetric-looking structure is never flipped by a sign choice made blindly.
"""

from __future__ import annotations

import itertools

import numpy as np


def second_moments(weights: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted centre (3,) and covariance (3, 3) of ``points`` (..., 3) with ``weights`` (...)."""
    w = weights.reshape(-1).astype(float)
    p = points.reshape(-1, 3)
    keep = w > 1e-6 * w.max()
    w, p = w[keep], p[keep]
    centre = (w[:, None] * p).sum(0) / w.sum()
    d = p - centre
    return centre, (w[:, None] * d).T @ d / w.sum()


def principal_axes(covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending) and eigenvectors (columns) of a symmetric matrix."""
    values, vectors = np.linalg.eigh(covariance)
    return values, vectors


def _axis_orders(values: np.ndarray, near_equal_ratio: float) -> list[tuple[int, int, int]]:
    orders = [(0, 1, 2)]
    for i in (0, 1):
        if values[i + 1] <= near_equal_ratio * max(values[i], 1e-12):
            order = [0, 1, 2]
            order[i], order[i + 1] = order[i + 1], order[i]
            orders.append(tuple(order))
    return orders


def candidate_rotations(
    reference_cov: np.ndarray, target_cov: np.ndarray, near_equal_ratio: float = 1.15
) -> list[np.ndarray]:
    """Proper rotations R (reference directions -> target directions) aligning the principal axes."""
    ref_values, ref_axes = principal_axes(reference_cov)
    tgt_values, tgt_axes = principal_axes(target_cov)
    orders = set(_axis_orders(ref_values, near_equal_ratio)) | set(_axis_orders(tgt_values, near_equal_ratio))
    candidates = []
    for order in sorted(orders):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            rotation = tgt_axes[:, order] @ np.diag(signs) @ ref_axes.T
            if np.linalg.det(rotation) > 0:
                candidates.append(rotation)
    return candidates


def normalised_cross_correlation(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    return float((a * b).sum() / (np.sqrt((a * a).sum() * (b * b).sum()) + 1e-12))


def rotation_angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle of the rotation a^T b, in degrees."""
    cos = (np.trace(np.asarray(a).T @ np.asarray(b)) - 1) / 2
    return float(np.degrees(np.arccos(np.clip(cos, -1, 1))))
