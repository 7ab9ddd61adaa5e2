"""KNEEL on ISBI 2015 Test1 (images 151-300; the model was trained on 001-150 only): accuracy and speed.

Rows: the two-stage model, the same stage 2 without stage 1 (ROI at the training-set mean position),
the junior annotator against the senior one (inter-observer variability) and the published random-forest
reference. The ablation rows (benchmarks/knee_ablation.py) are appended when their results exist.
Speed: wall time of ``detect_landmarks`` on an already loaded image (no file I/O), torch threads as set.

    nice -n 19 python benchmarks/knee_benchmark.py [--model FILE] [--threads 2] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch
from KneeLandmarksLib.pipeline import KneeModel, default_model_path, detect_landmarks
from LandmarkCoreLib.datasets import isbi_cases
from LandmarkCoreLib.evaluation import radial_errors, summarize_errors, write_evaluation_report

RESULTS = Path(__file__).resolve().parent / "results"
RADII = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0)
OUTLIER_MM = 10.0


def row(name: str, summary) -> str:
    o = summary.overall
    sdr = " | ".join(f"{o.sdr[r]:.1f}" for r in RADII)
    return f"| {name} | {o.mean:.2f} ± {o.sd:.2f} | {o.median:.2f} | {sdr} | {summary.outlier_percent:.1f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=default_model_path())
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, help="only the first N Test1 images")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = KneeModel.load(args.model)
    cases = isbi_cases("test1")[: args.limit]
    labels = model.landmark_names
    two, one, seconds, cpu_seconds = [], [], [], []
    for case in cases:
        image = case.read_image()
        started, started_cpu = time.perf_counter(), time.process_time()
        two.append(detect_landmarks(model, image).points)
        seconds.append(time.perf_counter() - started)
        cpu_seconds.append(time.process_time() - started_cpu)
        one.append(detect_landmarks(model, image, single_stage=True).points)
    senior = np.stack([c.senior.points for c in cases])
    junior = np.stack([c.junior.points for c in cases])
    names = [c.case_id for c in cases]

    def summary(pred):
        errors = radial_errors(np.stack(pred) if isinstance(pred, list) else pred, senior)
        return summarize_errors(errors, labels, names, RADII, outlier_threshold=OUTLIER_MM)

    results = {"two-stage": summary(two), "stage 2 only": summary(one), "junior": summary(junior)}
    write_evaluation_report(results["two-stage"], RESULTS / "knee_isbi2015_report", "KNEEL ISBI 2015 Test1")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    write_table(results, np.array(seconds), np.array(cpu_seconds), peak_mb, args, len(cases))


def write_table(
    results: dict, seconds: np.ndarray, cpu: np.ndarray, peak_mb: float, args, n_cases: int
) -> None:
    radii = " | ".join(f"SDR {r:g} mm (%)" for r in RADII)
    lines = [
        "# KNEEL on ISBI 2015 Test1 (151-300), trained on 001-150 only; truth: senior annotator",
        "",
        f"Model: `{args.model.name}`, {n_cases} images, errors in mm (0.1 mm pixels).",
        "",
        f"| method | MRE ± SD (mm) | median (mm) | {radii} | outliers ≥ {OUTLIER_MM:g} mm (%) |",
        "|---|---|---|" + "---|" * len(RADII) + "---|",
        row("KNEEL two-stage (this model)", results["two-stage"]),
        row("1 stage: stage 2 at the mean ROI, no stage 1", results["stage 2 only"]),
        row("junior vs senior annotator (inter-observer)", results["junior"]),
        "| random forest regression voting (Lindner & Cootes 2015, published) | 1.6-1.7 | - | - | - "
        "| 75-85 | - | - | - | - |",
    ]
    lines += ablation_lines()
    lines += [
        "",
        f"Speed ({args.threads} torch threads, CPU, 2 cores shared with other jobs): two-stage "
        f"`detect_landmarks` median {np.median(seconds) * 1000:.0f} ms per image "
        f"(mean {seconds.mean() * 1000:.0f} ms, max {seconds.max() * 1000:.0f} ms), no file I/O; CPU time "
        f"of the process per image: median {np.median(cpu) * 1000:.0f} ms (the wall time includes waiting "
        "for the shared cores); "
        f"peak resident memory of the benchmark process {peak_mb:.0f} MB.",
        "",
        "Per-landmark table and CED: `knee_isbi2015_report/`.",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "knee_isbi2015.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


def ablation_lines() -> list[str]:
    path = RESULTS / "knee_ablation.json"
    if not path.exists():
        return ["", "(ablation not run: benchmarks/knee_ablation.py)"]
    lines = [
        "",
        "Ablation (benchmarks/knee_ablation.py: one-stage model at 1.6 mm/px, short equal budget):",
        "",
        "| variant | MRE (mm) | SDR 2 mm | 2.5 mm | 3 mm | 4 mm |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in json.loads(path.read_text(encoding="utf-8")).items():
        lines.append(
            f"| {name} | {r['mre_mm']:.2f} | {r['sdr_2.0mm']:.1f} | {r['sdr_2.5mm']:.1f} | "
            f"{r['sdr_3.0mm']:.1f} | {r['sdr_4.0mm']:.1f} |"
        )
    return lines


if __name__ == "__main__":
    main()
