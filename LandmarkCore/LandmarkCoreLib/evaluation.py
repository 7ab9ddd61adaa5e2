"""Landmark-detection metrics, reports, and the one ``evaluate`` command every CLI reuses.

Errors are radial (Euclidean) distances per case and landmark, in mm or divided by a per-case
normaliser (e.g. the inter-ocular distance). NaN marks a missing prediction; it is left out of the
statistics and counted in ``missing``.

- SDR/PCK at radius r: percentage of errors <= r.
- CED: fraction of errors <= t as t grows; its AUC up to T is normalised to [0, 1] and equals
  mean(max(0, 1 - e / T)) exactly.
- Failure rate: percentage of cases whose mean error exceeds the failure threshold (face-alignment use).
- Outliers: percentage of errors above the outlier threshold (default: the largest radius).

``python -m LandmarkCoreLib.evaluate_folders isbi-observers`` evaluates the ISBI 2015 junior annotator
against the senior one (the inter-observer variability of that data set).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import atomic_path, write_text_atomic
from .errors import InputError
from .landmarks import LandmarkSet

DEFAULT_RADII = (2.0, 2.5, 3.0, 4.0)
LANDMARK_SUFFIXES = (".mrk.json", ".fcsv", ".csv", ".json")


def radial_errors(pred: np.ndarray, truth: np.ndarray, normaliser: np.ndarray | None = None) -> np.ndarray:
    """Euclidean distance per case and landmark, (C, N); inputs (C, N, D) or (N, D); NaN = missing."""
    pred = np.asarray(pred, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if pred.shape != truth.shape:
        raise InputError("predictions", f"shape {pred.shape} does not match the truth's {truth.shape}")
    if pred.ndim == 2:
        pred, truth = pred[None], truth[None]
    errors = np.linalg.norm(pred - truth, axis=-1)
    if normaliser is None:
        return errors
    normaliser = np.asarray(normaliser, dtype=np.float64).reshape(-1)
    if normaliser.shape != (errors.shape[0],):
        raise InputError(
            "normaliser", f"needs one value per case ({errors.shape[0]}), got {normaliser.shape}"
        )
    if not np.all(normaliser > 0):
        raise InputError(
            "normaliser", f"must be positive for every case; cases {np.flatnonzero(~(normaliser > 0))}"
        )
    return errors / normaliser[:, None]


@dataclass
class ErrorStats:
    """Statistics of one group of errors (a landmark, or all of them)."""

    label: str
    count: int
    missing: int
    mean: float
    median: float
    sd: float
    sdr: dict[float, float]  # radius -> percent of errors <= radius


@dataclass
class EvaluationSummary:
    labels: list[str]
    case_names: list[str]
    errors: np.ndarray  # (C, N)
    unit: str
    radii: tuple[float, ...]
    per_landmark: list[ErrorStats]
    overall: ErrorStats
    ced_thresholds: np.ndarray
    ced_fractions: np.ndarray
    auc_threshold: float | None
    auc: float | None
    failure_threshold: float | None
    failure_rate: float | None  # percent of cases
    outlier_threshold: float
    outlier_percent: float
    case_mean_errors: np.ndarray = field(repr=False)


def _stats(label: str, errors: np.ndarray, radii: Sequence[float]) -> ErrorStats:
    valid = errors[~np.isnan(errors)]
    if valid.size == 0:
        return ErrorStats(label, 0, int(errors.size), np.nan, np.nan, np.nan, {r: np.nan for r in radii})
    return ErrorStats(
        label=label,
        count=int(valid.size),
        missing=int(errors.size - valid.size),
        mean=float(valid.mean()),
        median=float(np.median(valid)),
        sd=float(valid.std()),
        sdr={float(r): float(100.0 * np.mean(valid <= r)) for r in radii},
    )


def ced_auc(errors: np.ndarray, threshold: float) -> float:
    """Area under the cumulative error distribution up to ``threshold``, divided by ``threshold``."""
    valid = np.asarray(errors, dtype=np.float64)
    valid = valid[~np.isnan(valid)]
    if valid.size == 0:
        return float("nan")
    return float(np.mean(np.clip(1.0 - valid / threshold, 0.0, 1.0)))


def summarize_errors(
    errors: np.ndarray,
    labels: Sequence[str],
    case_names: Sequence[str],
    radii: Sequence[float] = DEFAULT_RADII,
    auc_threshold: float | None = None,
    failure_threshold: float | None = None,
    outlier_threshold: float | None = None,
    unit: str = "mm",
) -> EvaluationSummary:
    """Per-landmark and overall statistics of an error table (C cases x N landmarks)."""
    errors = np.asarray(errors, dtype=np.float64)
    if errors.ndim != 2 or errors.shape != (len(case_names), len(labels)):
        raise InputError(
            "error table", f"shape {errors.shape} is not (cases={len(case_names)}, labels={len(labels)})"
        )
    radii = tuple(float(r) for r in radii)
    valid = errors[~np.isnan(errors)]
    ced_max = auc_threshold or max([*radii, float(valid.max()) if valid.size else 1.0])
    thresholds = np.linspace(0.0, ced_max, 201)
    fractions = np.array([np.mean(valid <= t) if valid.size else np.nan for t in thresholds])
    outlier_threshold = max(radii) if outlier_threshold is None else float(outlier_threshold)
    with np.errstate(invalid="ignore"):
        case_means = np.array([np.nanmean(row) if np.any(~np.isnan(row)) else np.nan for row in errors])
    failure_rate = None
    if failure_threshold is not None:
        judged = case_means[~np.isnan(case_means)]
        failure_rate = float(100.0 * np.mean(judged > failure_threshold)) if judged.size else float("nan")
    return EvaluationSummary(
        labels=list(labels),
        case_names=list(case_names),
        errors=errors,
        unit=unit,
        radii=radii,
        per_landmark=[_stats(label, errors[:, j], radii) for j, label in enumerate(labels)],
        overall=_stats("all", errors, radii),
        ced_thresholds=thresholds,
        ced_fractions=fractions,
        auc_threshold=auc_threshold,
        auc=None if auc_threshold is None else ced_auc(errors, auc_threshold),
        failure_threshold=failure_threshold,
        failure_rate=failure_rate,
        outlier_threshold=outlier_threshold,
        outlier_percent=float(100.0 * np.mean(valid > outlier_threshold)) if valid.size else float("nan"),
        case_mean_errors=case_means,
    )


# --------------------------------------------------------------------------- landmark sets -> errors
def stack_by_labels(sets: Sequence[LandmarkSet | None], labels: Sequence[str]) -> np.ndarray:
    """(C, N, 3) positions of ``labels`` in each set; NaN where a set (or a label in it) is missing."""
    stacked = np.full((len(sets), len(labels), 3), np.nan)
    for c, landmarks in enumerate(sets):
        if landmarks is None:
            continue
        points = landmarks.points_3d()
        for j, label in enumerate(labels):
            if label in landmarks.labels:
                stacked[c, j] = points[landmarks.labels.index(label)]
    return stacked


def evaluate_landmark_sets(
    predictions: Sequence[LandmarkSet | None],
    truths: Sequence[LandmarkSet],
    case_names: Sequence[str] | None = None,
    normalize_by: tuple[str, str] | None = None,
    **summary_options,
) -> EvaluationSummary:
    """Compare predictions with truths label by label (truth's label order); ``None`` = not predicted.

    ``normalize_by=(a, b)`` divides each case's errors by the truth distance between landmarks a
    and b (e.g. ('36', '45'), the outer eye corners of a 68-point face).
    """
    if len(predictions) != len(truths) or not truths:
        raise InputError("evaluation", f"{len(predictions)} predictions for {len(truths)} truth sets")
    labels = truths[0].labels
    names = list(case_names) if case_names is not None else [t.name or str(i) for i, t in enumerate(truths)]
    truth = stack_by_labels(truths, labels)
    normaliser = None
    if normalize_by is not None:
        ends = stack_by_labels(truths, list(normalize_by))
        normaliser = np.linalg.norm(ends[:, 0] - ends[:, 1], axis=-1)
        summary_options.setdefault("unit", f"d({normalize_by[0]},{normalize_by[1]})")
    errors = radial_errors(stack_by_labels(predictions, labels), truth, normaliser)
    return summarize_errors(errors, labels, names, **summary_options)


# --------------------------------------------------------------------------- reports
def _fmt(value: float | None, digits: int = 2) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.{digits}f}"


def _table_rows(summary: EvaluationSummary) -> tuple[list[str], list[list[str]]]:
    header = ["landmark", "n", "missing", f"mean ({summary.unit})", "median", "SD"]
    header += [f"SDR<={r:g} (%)" for r in summary.radii]
    rows = []
    for stats in [*summary.per_landmark, summary.overall]:
        row = [stats.label, str(stats.count), str(stats.missing), _fmt(stats.mean), _fmt(stats.median)]
        row += [_fmt(stats.sd)] + [_fmt(stats.sdr[r], 1) for r in summary.radii]
        rows.append(row)
    return header, rows


def summary_lines(summary: EvaluationSummary) -> list[str]:
    """The headline numbers as short sentences."""
    o = summary.overall
    lines = [
        f"cases: {len(summary.case_names)}, landmarks: {len(summary.labels)}, errors: {o.count}, "
        f"missing: {o.missing}",
        f"mean radial error: {_fmt(o.mean, 3)} {summary.unit} (SD {_fmt(o.sd, 3)}), "
        f"median: {_fmt(o.median, 3)} {summary.unit}",
        "SDR/PCK: " + ", ".join(f"{_fmt(o.sdr[r], 1)}% <= {r:g}" for r in summary.radii),
        f"outliers (> {summary.outlier_threshold:g} {summary.unit}): {_fmt(summary.outlier_percent, 1)}%",
    ]
    if summary.auc is not None:
        lines.append(f"CED AUC up to {summary.auc_threshold:g} {summary.unit}: {_fmt(summary.auc, 4)}")
    if summary.failure_rate is not None:
        lines.append(
            f"failure rate (case mean > {summary.failure_threshold:g} {summary.unit}): "
            f"{_fmt(summary.failure_rate, 1)}%"
        )
    return lines


def markdown_table(summary: EvaluationSummary, title: str = "") -> str:
    header, rows = _table_rows(summary)
    out = [f"## {title}", ""] if title else []
    out += [f"- {line}" for line in summary_lines(summary)] + [""]
    out.append("| " + " | ".join(header) + " |")
    out.append("|" + "|".join("---" for _ in header) + "|")
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out) + "\n"


def _csv_text(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def plot_ced(summary: EvaluationSummary, path: str | os.PathLike, title: str = "") -> None:
    """Cumulative error distribution as a PNG (Agg canvas; no GUI backend, no global pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 4), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    label = (
        f"AUC@{summary.auc_threshold:g} = {summary.auc:.3f}" if summary.auc is not None else "all landmarks"
    )
    axes.plot(summary.ced_thresholds, 100.0 * summary.ced_fractions, label=label)
    axes.set_xlabel(f"radial error ({summary.unit})")
    axes.set_ylabel("landmarks within error (%)")
    axes.set_ylim(0, 100)
    axes.set_xlim(0, summary.ced_thresholds[-1])
    axes.grid(True, alpha=0.3)
    axes.legend(loc="lower right")
    axes.set_title(title or "Cumulative error distribution")
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")


def write_evaluation_report(
    summary: EvaluationSummary, outdir: str | os.PathLike, title: str
) -> dict[str, Path]:
    """Write table.md, table.csv, per_case.csv and ced.png into ``outdir`` (atomically); return the paths."""
    outdir = Path(outdir)
    paths = {name: outdir / name for name in ("table.md", "table.csv", "per_case.csv", "ced.png")}
    write_text_atomic(paths["table.md"], markdown_table(summary, title))
    write_text_atomic(paths["table.csv"], _csv_text(*_table_rows(summary)))
    per_case = [
        [case, label, _fmt(summary.errors[c, j], 4)]
        for c, case in enumerate(summary.case_names)
        for j, label in enumerate(summary.labels)
    ]
    write_text_atomic(
        paths["per_case.csv"], _csv_text(["case", "landmark", f"error ({summary.unit})"], per_case)
    )
    plot_ced(summary, paths["ced.png"], title)
    return paths
