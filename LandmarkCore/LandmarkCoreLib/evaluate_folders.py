"""``evaluate``: predictions folder against truth folder (matched by file name), and its command line.

Refused instead of scoring a subset: two files with one name (``A.fcsv`` beside ``A.mrk.json``), truth files
with differing label sets, 2D and 3D landmarks mixed. One unreadable prediction is a failed case.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputError
from .evaluation import (
    DEFAULT_RADII,
    LANDMARK_SUFFIXES,
    EvaluationSummary,
    evaluate_landmark_sets,
    markdown_table,
    write_evaluation_report,
)
from .landmarks import LandmarkSet, landmark_file_stem, read_landmarks


def _landmark_files(folder: Path, what: str) -> dict[str, Path]:
    """{name stem: file}; two files with one stem (``A.fcsv`` beside ``A.mrk.json``) are refused."""
    if not folder.is_dir():
        raise InputError(f"{what} folder '{folder}'", "does not exist or is not a folder")
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.name.lower().endswith(LANDMARK_SUFFIXES):
            stem = landmark_file_stem(path)
            if stem in files:
                raise InputError(
                    f"{what} folder '{folder}'",
                    f"'{files[stem].name}' and '{path.name}' are both '{stem}': keep one of them",
                )
            files[stem] = path
    if not files:
        raise InputError(f"{what} folder '{folder}'", "holds no landmark files (.mrk.json, .fcsv, .csv)")
    return files


def _is_planar(landmarks: LandmarkSet) -> bool:
    """2D landmarks: stored as (x, y) or with z = 0 on every point (how 2D results are written)."""
    return landmarks.dim == 2 or bool(np.all(np.nan_to_num(landmarks.points[:, 2]) == 0.0))


def _check_truths(truths: Sequence[LandmarkSet], files: Sequence[Path]) -> None:
    """Every truth file must have the same labels and the same dimension, else a subset would be scored."""
    reference, first = truths[0], files[0]
    for truth, path in zip(truths[1:], files[1:], strict=True):
        if set(truth.labels) != set(reference.labels):
            differing = sorted(set(truth.labels) ^ set(reference.labels))
            raise InputError(
                f"truth landmarks '{path}'",
                f"labels differ from '{first.name}' ({', '.join(differing[:5])}); give one label set",
            )
        if _is_planar(truth) != _is_planar(reference):
            raise InputError(f"truth landmarks '{path}'", f"2D and 3D truth files mixed (see '{first.name}')")


@dataclass
class FolderEvaluation:
    """The summary of the readable predictions and the cases whose prediction could not be read."""

    summary: EvaluationSummary
    failed: dict[str, str] = field(default_factory=dict)


def _read_prediction(path: Path, truth: LandmarkSet) -> LandmarkSet:
    predicted = read_landmarks(path, "predicted landmarks")
    if not set(predicted.labels) & set(truth.labels):
        raise InputError(f"predicted landmarks '{path}'", "share no label with the truth file of that name")
    if _is_planar(predicted) != _is_planar(truth):
        dims = ("2D", "3D") if _is_planar(predicted) else ("3D", "2D")
        raise InputError(
            f"predicted landmarks '{path}'", f"are {dims[0]}, the truth file of that name {dims[1]}"
        )
    return predicted


def evaluate_folders(
    predictions_dir: str | os.PathLike,
    truth_dir: str | os.PathLike,
    normalize_by: tuple[str, str] | None = None,
    **summary_options,
) -> FolderEvaluation:
    """Compare every truth file with the prediction file of the same name stem (missing ones = NaN).

    A prediction that cannot be read is a failed case (NaN, listed in ``failed``), not an abort.
    """
    truth_files = _landmark_files(Path(truth_dir), "truth")
    predicted_files = _landmark_files(Path(predictions_dir), "predictions")
    if not set(truth_files) & set(predicted_files):
        raise InputError(
            f"predictions folder '{predictions_dir}'", f"no file name matches a truth file in '{truth_dir}'"
        )
    names = sorted(truth_files)
    truths = [read_landmarks(truth_files[n], "truth landmarks") for n in names]
    _check_truths(truths, [truth_files[n] for n in names])
    predictions: list[LandmarkSet | None] = []
    failed: dict[str, str] = {}
    for name, truth in zip(names, truths, strict=True):
        try:
            predictions.append(
                _read_prediction(predicted_files[name], truth) if name in predicted_files else None
            )
        except InputError as exc:
            predictions.append(None)
            failed[name] = str(exc)
    if len(failed) == len(predicted_files.keys() & truth_files.keys()):
        raise InputError(
            f"predictions folder '{predictions_dir}'",
            "no prediction is usable: " + next(iter(failed.values())),
        )
    summary = evaluate_landmark_sets(predictions, truths, names, normalize_by, **summary_options)
    return FolderEvaluation(summary, failed)


# --------------------------------------------------------------------------- command line
def _add_summary_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", type=Path, help="folder for table.md, table.csv, per_case.csv, ced.png")
    parser.add_argument("--title", default="Landmark evaluation", help="report title")
    parser.add_argument("--radii", type=float, nargs="+", default=list(DEFAULT_RADII), help="SDR/PCK radii")
    parser.add_argument("--auc-threshold", type=float, help="CED AUC up to this error")
    parser.add_argument(
        "--failure-threshold", type=float, help="a case fails when its mean error exceeds this"
    )
    parser.add_argument("--outlier-threshold", type=float, help="outlier error (default: the largest radius)")


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of the ``evaluate`` subcommand shared by every CLI of the extension."""
    parser.add_argument("--predictions", type=Path, required=True, help="folder of predicted landmark files")
    parser.add_argument("--truth", type=Path, required=True, help="folder of truth files (matched by name)")
    parser.add_argument(
        "--normalize-by",
        nargs=2,
        metavar=("LABEL_A", "LABEL_B"),
        help="divide errors by the truth distance between these landmarks (faces: 36 45)",
    )
    _add_summary_arguments(parser)


def _summary_options(args: argparse.Namespace) -> dict:
    return {
        "radii": args.radii,
        "auc_threshold": args.auc_threshold,
        "failure_threshold": args.failure_threshold,
        "outlier_threshold": args.outlier_threshold,
    }


def report(summary: EvaluationSummary, args: argparse.Namespace, stream=None) -> None:
    """Print the Markdown table and, with ``--output``, write the report files."""
    out = stream or sys.stdout
    out.write(markdown_table(summary, args.title))
    if args.output is not None:
        paths = write_evaluation_report(summary, args.output, args.title)
        out.write(f"\nreport written to {paths['table.md'].parent}\n")


def run_evaluate(args: argparse.Namespace) -> int:
    """Run ``evaluate`` as parsed by :func:`add_evaluate_arguments`; prints the table, writes the report.

    Exit code 0, or 1 when some prediction could not be read (each named on stderr, scored as missing).
    """
    normalize_by = tuple(args.normalize_by) if args.normalize_by else None
    result = evaluate_folders(args.predictions, args.truth, normalize_by, **_summary_options(args))
    report(result.summary, args)
    for name, reason in result.failed.items():
        print(f"case '{name}' failed: {reason}", file=sys.stderr)
    return 1 if result.failed else 0


def evaluate_isbi_observers(
    root: str | os.PathLike | None = None, split: str = "all", **summary_options
) -> EvaluationSummary:
    """ISBI 2015: the junior annotator scored against the senior one (mm)."""
    from .datasets import isbi_cases

    cases = isbi_cases(split, root)
    return evaluate_landmark_sets(
        [c.junior for c in cases], [c.senior for c in cases], [c.case_id for c in cases], **summary_options
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m LandmarkCoreLib.evaluate_folders", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    add_evaluate_arguments(
        commands.add_parser("evaluate", help="compare a predictions folder with a truth folder")
    )
    observers = commands.add_parser("isbi-observers", help="ISBI 2015 junior vs senior annotator")
    observers.add_argument("--data-root", type=Path, help="default: ../shared/data or $LANDMARK_DATA_ROOT")
    observers.add_argument("--split", default="all", choices=["train", "test1", "all"])
    _add_summary_arguments(observers)
    observers.set_defaults(title="ISBI 2015: junior vs senior annotator")
    args = parser.parse_args(argv)
    try:
        if args.command == "evaluate":
            return run_evaluate(args)
        else:
            report(evaluate_isbi_observers(args.data_root, args.split, **_summary_options(args)), args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
