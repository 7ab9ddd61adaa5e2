"""One-shot landmark detection on the mouse skull micro-CT set (Maga et al. 2017): train on one reference
(+ one validation subject), detect the other 18 subjects with the one-shot method and with the naive
registration baseline, print the evaluation table and write it to benchmarks/results/oneshot_<ref>.md.

    python benchmarks/oneshot_benchmark.py                         # documented reference/validation
    python benchmarks/oneshot_benchmark.py --runs A_J_:CBA_J_ NZW_LACJ_:C3H_HEJ_ --spread
    python benchmarks/oneshot_benchmark.py --quick                 # 3 targets, for a smoke test

A trained model is cached as WORKDIR/model_<reference>.pt; a cached model reports the training time it
recorded when it was trained. Peak memory is the process's maximum resident set size (getrusage).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
from LandmarkCoreLib.atomic import write_text_atomic
from LandmarkCoreLib.datasets import mouse_skull_subjects
from LandmarkCoreLib.errors import LandmarkError
from LandmarkCoreLib.evaluation import markdown_table, summarize_errors
from LandmarkCoreLib.segmentations import read_mask
from OneShotLandmarksLib.config import TrainingConfig
from OneShotLandmarksLib.model import OneShotModel
from OneShotLandmarksLib.pipeline import METHODS, detect_landmarks, train_model

REFERENCE, VALIDATION = "C57BL6_J_", "BALB_CBYJ_"  # documented choice (README); C57BL/6J is the common strain
RADII = (0.5, 1.0)
STAGES = ("localization", "rotation", "registration", "total", "cpu")
TRAINING = TrainingConfig(width=32)  # width 32: the paper's 64 is 2-4x slower per slice on 2 CPU cores


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def trained_model(subjects: dict, reference: str, validation: str, workdir: Path) -> OneShotModel:
    path = workdir / f"model_{reference}.pt"
    if path.exists():
        return OneShotModel.load(path)
    ref, val = subjects[reference], subjects[validation]
    ref_image, val_image = ref.read_image(), val.read_image()
    model = train_model(
        ref_image,
        ref.read_landmarks(),
        read_mask(ref.bone_mask, None, ref_image, "reference SOI"),
        val_image,
        read_mask(val.bone_mask, None, val_image, "validation SOI"),
        TRAINING,
        progress=lambda f, m: print(f"  [train {reference}] {m}", file=sys.stderr, flush=True),
        checkpoint_path=workdir / f"model_{reference}.checkpoint",
    )
    model.save(path)
    return model


def detect_all(model: OneShotModel, targets: list, method: str) -> tuple[np.ndarray, list[dict]]:
    errors, records = np.full((len(targets), len(model.landmarks)), np.nan), []
    for i, subject in enumerate(targets):
        truth = subject.read_landmarks().subset(model.landmarks.labels)
        image = subject.read_image()
        cpu_started = time.process_time()
        try:
            result = detect_landmarks(model, image, method)
        except LandmarkError as exc:
            records.append({"target": subject.name, "error": str(exc)})
            print(f"  [{method}] {subject.name}: FAILED {exc}", file=sys.stderr, flush=True)
            continue
        errors[i] = np.linalg.norm(result.landmarks.points - truth.points, axis=1)
        cpu = time.process_time() - cpu_started
        records.append(
            {
                "target": subject.name,
                "iterations": len(result.centre_iterations),
                **result.timings,
                "cpu": cpu,
            }
        )
        print(
            f"  [{method}] {subject.name}: mean {np.nanmean(errors[i]):.3f} mm, "
            f"{result.timings['total']:.1f} s",
            file=sys.stderr,
            flush=True,
        )
    return errors, records


def run(
    subjects: dict, reference: str, validation: str, targets: list, workdir: Path, methods: list[str]
) -> dict:
    started = time.perf_counter()
    model = trained_model(subjects, reference, validation, workdir)
    training_seconds = model.training_summary.get("total_seconds", time.perf_counter() - started)
    outcome = {
        "reference": reference,
        "validation": validation,
        "training_seconds": training_seconds,
        "epochs": model.training_summary.get("epochs"),
        "methods": {},
    }
    for method in methods:
        errors, records = detect_all(model, targets, method)
        summary = summarize_errors(
            errors, model.landmarks.labels, [t.name for t in targets], radii=RADII, failure_threshold=1.0
        )
        outcome["methods"][method] = {"errors": errors, "records": records, "summary": summary}
    outcome["peak_memory_mb"] = peak_memory_mb()
    return outcome


def _median(records: list[dict], key: str) -> float:
    values = [r[key] for r in records if key in r]
    return float(np.median(values)) if values else float("nan")


def report(outcome: dict) -> str:
    ref, methods = outcome["reference"], outcome["methods"]
    lines = [
        f"# One-shot landmarks, mouse skull micro-CT: reference {ref}, validation {outcome['validation']}",
        "",
        f"Training: {outcome['training_seconds']:.0f} s ({outcome['epochs']} epochs, U-Net width "
        f"{TRAINING.width}); peak memory (max RSS) {outcome['peak_memory_mb']:.0f} MB; 2 CPU cores shared "
        f"with other jobs (load average at the end {os.getloadavg()[0]:.1f}): wall times include waiting for "
        "the CPU, 'cpu' is this process's CPU time (both cores) per detection.",
        "",
        "| method | mean radial error (mm) | SDR <= 0.5 mm (%) | SDR <= 1 mm (%) | targets with mean > 1 mm "
        "| failed targets | median detection (s) | median CPU time (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method, m in methods.items():
        s, case_means = m["summary"], np.nanmean(m["errors"], axis=1)
        failed = sum("error" in r for r in m["records"])
        lines.append(
            f"| {method} | {s.overall.mean:.3f} | {s.overall.sdr[0.5]:.1f} | {s.overall.sdr[1.0]:.1f} | "
            f"{int(np.sum(case_means > 1.0))} | {failed} | {_median(m['records'], 'total'):.1f} | "
            f"{_median(m['records'], 'cpu'):.1f} |"
        )
    lines += [
        "",
        "## Per target (mean / max radial error in mm; seconds per stage, one-shot)",
        "",
        "| target | oneshot mean | oneshot max | registration mean | iterations | "
        + " | ".join(f"{s} (s)" for s in STAGES)
        + " |",
        "|---" * (5 + len(STAGES)) + "|",
    ]
    one, reg = methods["oneshot"], methods.get("registration")
    for i, record in enumerate(one["records"]):
        timing = " | ".join(f"{record.get(s, float('nan')):.1f}" for s in STAGES)
        lines.append(
            f"| {record['target']} | {np.nanmean(one['errors'][i]):.3f} | {np.nanmax(one['errors'][i]):.2f} "
            f"| {np.nanmean(reg['errors'][i]) if reg else float('nan'):.2f} | "
            f"{record.get('iterations', '')} | {timing} |"
        )
    lines += [
        "",
        "Median seconds per stage (one-shot): "
        + ", ".join(f"{s} {_median(one['records'], s):.1f}" for s in STAGES),
        "",
    ]
    for method, m in methods.items():
        lines.append(markdown_table(m["summary"], f"{method}: per landmark"))
    return "\n".join(lines) + "\n"


def headline(outcome: dict) -> dict:
    """The numbers of one run that the spread table compares (JSON-able)."""
    one = outcome["methods"]["oneshot"]
    reg = outcome["methods"].get("registration")
    return {
        "reference": outcome["reference"],
        "validation": outcome["validation"],
        "oneshot_mean": one["summary"].overall.mean,
        "sdr_0.5": one["summary"].overall.sdr[0.5],
        "sdr_1": one["summary"].overall.sdr[1.0],
        "worst_target_mean": float(np.nanmax(np.nanmean(one["errors"], axis=1))),
        "registration_mean": reg["summary"].overall.mean if reg else None,
        "training_seconds": outcome["training_seconds"],
        "median_detection_seconds": _median(one["records"], "total"),
        "median_cpu_seconds": _median(one["records"], "cpu"),
    }


def spread(headlines: list[dict]) -> str:
    lines = [
        "# One-shot landmarks: spread over reference choices",
        "",
        "| reference | validation | oneshot mean (mm) | SDR<=0.5 (%) | SDR<=1 (%) | worst target mean (mm) | "
        "registration mean (mm) | training (s) | median detection (s) | median CPU (s) |",
        "|---" * 10 + "|",
    ]
    for h in headlines:
        reg = "" if h["registration_mean"] is None else f"{h['registration_mean']:.2f}"
        lines.append(
            f"| {h['reference']} | {h['validation']} | {h['oneshot_mean']:.3f} | {h['sdr_0.5']:.1f} | "
            f"{h['sdr_1']:.1f} | {h['worst_target_mean']:.2f} | {reg} | {h['training_seconds']:.0f} | "
            f"{h['median_detection_seconds']:.1f} | {h['median_cpu_seconds']:.1f} |"
        )
    means = [h["oneshot_mean"] for h in headlines]
    lines += [
        "",
        f"One-shot mean radial error over {len(means)} reference choices: {np.mean(means):.3f} mm "
        f"(SD {np.std(means, ddof=1) if len(means) > 1 else 0:.3f}, "
        f"range {min(means):.3f}-{max(means):.3f}).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--runs",
        nargs="+",
        default=[f"{REFERENCE}:{VALIDATION}"],
        help="REFERENCE:VALIDATION pairs (strain names)",
    )
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument(
        "--spread", action="store_true", help="write the spread over every run whose headline is in WORKDIR"
    )
    parser.add_argument("--quick", action="store_true", help="only 3 targets")
    parser.add_argument("--workdir", type=Path, default=Path("outputs/oneshot_benchmark"))
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    subjects = {s.name: s for s in mouse_skull_subjects()}
    for pair in args.runs:
        reference, validation = pair.split(":")
        targets = [s for name, s in subjects.items() if name not in (reference, validation)]
        outcome = run(
            subjects,
            reference,
            validation,
            targets[:3] if args.quick else targets,
            args.workdir,
            args.methods,
        )
        text = report(outcome)
        print(text)
        suffix = "_quick" if args.quick else ""
        write_text_atomic(args.results / f"oneshot_{reference}{suffix}.md", text)
        write_text_atomic(
            args.workdir / f"records_{reference}{suffix}.json",
            json.dumps({m: v["records"] for m, v in outcome["methods"].items()}, indent=1),
        )
        if not args.quick:
            write_text_atomic(
                args.workdir / f"headline_{reference}.json", json.dumps(headline(outcome), indent=1)
            )
    if args.spread:
        headlines = [json.loads(p.read_text()) for p in sorted(args.workdir.glob("headline_*.json"))]
        text = spread(headlines)
        print(text)
        write_text_atomic(args.results / "oneshot_spread.md", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
