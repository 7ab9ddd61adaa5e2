"""Face metrics through LandmarkCoreLib.evaluation: NME by the outer-eye-corner distance (points 36,
45), CED with AUC and failure rate at 0.08 and 0.10."""

from __future__ import annotations

import numpy as np
import torch
from LandmarkCoreLib.datasets import FACE_OUTER_EYE_CORNERS
from LandmarkCoreLib.evaluation import ced_auc, radial_errors, summarize_errors

from .data import CachedSplit, augment_batch

THRESHOLDS = (0.08, 0.10)


def normalised_errors(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(C, 68) point errors divided by each case's true outer-eye-corner distance."""
    a, b = FACE_OUTER_EYE_CORNERS
    inter_ocular = np.linalg.norm(truth[:, a] - truth[:, b], axis=-1)
    return radial_errors(pred, truth, inter_ocular)


def face_metrics(errors: np.ndarray, case_names: list[str]) -> dict[str, float]:
    """NME (mean over points and cases), and per threshold the CED AUC and the failure rate (% of
    cases whose mean normalised error exceeds it)."""
    summary = summarize_errors(
        errors,
        [str(i) for i in range(errors.shape[1])],
        case_names,
        radii=THRESHOLDS,
        failure_threshold=THRESHOLDS[0],
        unit="NME",
    )
    case_means = summary.case_mean_errors
    metrics = {"NME": summary.overall.mean, "NME_median": summary.overall.median}
    for t in THRESHOLDS:
        metrics[f"AUC@{t}"] = ced_auc(case_means, t)
        metrics[f"FR@{t}"] = float(100.0 * np.mean(case_means > t))
    return metrics


@torch.no_grad()
def predict_cached(model, split: CachedSplit, batch: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predictions, truth (both in crop pixels) and peaks on the central crops of a cached split."""
    generator = torch.Generator().manual_seed(0)
    preds, truths, peaks = [], [], []
    for start in range(0, len(split.names), batch):
        images, points = augment_batch(
            split.images[start : start + batch],
            split.points[start : start + batch],
            model.input_size,
            generator,
            augment=False,
        )
        p, k = model.predict_crops(images)
        preds.append(p)
        peaks.append(k)
        truths.append(points.double().numpy())
    return np.concatenate(preds), np.concatenate(truths), np.concatenate(peaks)
