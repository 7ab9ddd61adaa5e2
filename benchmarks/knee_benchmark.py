"""KNEEL on ISBI 2015 Test1 (images 151-300; the model was trained on 001-150 only): accuracy and speed.

Rows: the full model (two KNEEL stages and, when the model has one, the stage-3 refinement), the same
without refinement, stage 2 without stage 1 (ROI at the training-set mean position), the junior annotator
against the senior one (inter-observer variability) and the published random-forest reference. The
ablation rows (benchmarks/knee_ablation.py) are appended when their results exist. Speed: wall time of
``detect_landmarks`` on an already loaded image (no file I/O), torch threads as set.

Plausibility (issue 17): the shape model's 5-fold cross-validation on 001-150 beside its distances on
Test1; every Test1 film also mirrored left-right (a patient facing the other way: found and mapped back?),
at a wrong pixel size (half and double), and synthetic noise and blank films (refused?).

    nice -n 19 python benchmarks/knee_benchmark.py [--threads 2] [--limit N]
    python benchmarks/knee_benchmark.py --model OTHER.pt --name knee_isbi2015_other   # another model
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from KneeLandmarksLib.data import resolve_training_cases
from KneeLandmarksLib.pipeline import KneeModel, default_model_path, detect_landmarks
from KneeLandmarksLib.shape_model import case_shapes, cross_validate
from LandmarkCoreLib.datasets import isbi_cases
from LandmarkCoreLib.errors import InputError
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
    parser.add_argument(
        "--name", default="knee_isbi2015", help="writes results/NAME.md and results/NAME_report/"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = KneeModel.load(args.model)
    cases = isbi_cases("test1")[: args.limit]
    labels = model.landmark_names
    variants = {  # name: detect_landmarks options
        "full": {},
        "two-stage": {"refine": False},
        "stage 2 only": {"single_stage": True, "refine": False},
    }
    points = {name: [] for name in variants}
    seconds = {name: [] for name in ("full", "two-stage")}
    cpu_seconds = []
    for case in cases:
        image = case.read_image()
        for name, options in variants.items():
            started, started_cpu = time.perf_counter(), time.process_time()
            points[name].append(detect_landmarks(model, image, **options).points)
            if name in seconds:
                seconds[name].append(time.perf_counter() - started)
            if name == "full":
                cpu_seconds.append(time.process_time() - started_cpu)
    senior = np.stack([c.senior.points for c in cases])
    junior = np.stack([c.junior.points for c in cases])
    mean_annotator = np.stack([c.annotation("mean").points for c in cases])
    names = [c.case_id for c in cases]

    def summary(pred, truth=senior):
        errors = radial_errors(np.stack(pred) if isinstance(pred, list) else pred, truth)
        return summarize_errors(errors, labels, names, RADII, outlier_threshold=OUTLIER_MM)

    results = {name: summary(p) for name, p in points.items()}
    results["full vs mean annotator"] = summary(points["full"], mean_annotator)
    results["junior"] = summary(junior)
    write_evaluation_report(results["full"], RESULTS / f"{args.name}_report", "KNEEL ISBI 2015 Test1")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    timing = {name: np.array(s) for name, s in seconds.items()}
    drift = annotator_drift_lines(np.stack(points["full"]), senior, junior, labels)
    drift += plausibility_lines(model, cases, np.stack(points["full"]))
    write_table(model, results, timing, np.array(cpu_seconds), peak_mb, args, len(cases), drift)


def write_table(
    model: KneeModel,
    results: dict,
    seconds: dict[str, np.ndarray],
    cpu: np.ndarray,
    peak_mb: float,
    args,
    n_cases: int,
    drift: list[str],
) -> None:
    radii = " | ".join(f"SDR {r:g} mm (%)" for r in RADII)
    lines = [
        "# KNEEL on ISBI 2015 Test1 (151-300), trained on 001-150 only; truth: senior annotator",
        "",
        f"Model: `{args.model.name}` ({model.stages_description}), {n_cases} images, errors in mm "
        "(0.1 mm pixels).",
        "",
        f"| method | MRE ± SD (mm) | median (mm) | {radii} | outliers ≥ {OUTLIER_MM:g} mm (%) |",
        "|---|---|---|" + "---|" * len(RADII) + "---|",
        row(f"this model: {model.stages_description}", results["full"]),
        row("KNEEL two stages (refinement skipped)", results["two-stage"]),
        row("1 stage: stage 2 at the mean ROI, no stage 1 or refinement", results["stage 2 only"]),
        row("junior vs senior annotator (inter-observer)", results["junior"]),
        "| random forest regression voting (Lindner & Cootes 2015, published) | 1.6-1.7 | - | - | - "
        "| 75-85 | - | - | - | - |",
    ]
    mean_truth = results["full vs mean annotator"].overall
    lines += [
        "",
        f"The same model against the mean of both annotators (the truth some papers use): MRE "
        f"{mean_truth.mean:.2f} mm, SDR 2 mm {mean_truth.sdr[2.0]:.1f} %.",
    ]
    lines += drift
    lines += ablation_lines()
    full, two = seconds["full"], seconds["two-stage"]
    lines += [
        "",
        f"Speed ({args.threads} torch threads, 2 CPU cores): `detect_landmarks` ({model.stages_description}) "
        f"median {np.median(full) * 1000:.0f} ms per image (mean {full.mean() * 1000:.0f} ms, max "
        f"{full.max() * 1000:.0f} ms), no file I/O; two stages without refinement median "
        f"{np.median(two) * 1000:.0f} ms; CPU time of the process per image (full): median "
        f"{np.median(cpu) * 1000:.0f} ms; peak resident memory of the benchmark process {peak_mb:.0f} MB.",
        "",
        f"Per-landmark table and CED: `{args.name}_report/`.",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


def annotator_drift_lines(
    predicted: np.ndarray, senior: np.ndarray, junior: np.ndarray, labels: list[str]
) -> list[str]:
    """How far each landmark's mean senior-minus-junior offset moved between the training images and the
    evaluated ones, beside the model's mean error vector there: a convention the senior annotator changed
    after the training set shows up as both (the junior annotator serves as the fixed reference)."""
    train = isbi_cases("train")
    train_offset = np.stack([c.senior.points - c.junior.points for c in train])[..., :2].mean(0)
    test_offset = (senior - junior)[..., :2].mean(0)
    shift = np.linalg.norm(test_offset - train_offset, axis=1)
    errors = (predicted - senior)[..., :2]
    bias = errors.mean(0)
    debiased = np.linalg.norm(errors - bias, axis=2)
    debiased_sdr = 100 * (debiased <= 2.0).mean()
    lines = [
        "",
        "Annotator convention drift (diagnostic): the change of each landmark's mean senior-minus-junior "
        f"offset from the training images ({len(train)}) to these, beside the length of this model's mean "
        "error vector (model minus senior) here; the five largest changes:",
        "",
        "| landmark | offset change (mm) | model's mean error vector (mm) |",
        "|---|---|---|",
    ]
    for k in np.argsort(-shift)[:5]:
        lines.append(f"| {labels[k]} | {shift[k]:.2f} | {np.linalg.norm(bias[k]):.2f} |")
    lines += [
        "",
        "With every landmark's mean error vector subtracted (an oracle that uses the test labels, not a "
        f"method) the model would score MRE {debiased.mean():.2f} mm, SDR 2 mm {debiased_sdr:.1f} %.",
    ]
    return lines


def refused(model: KneeModel, image: sitk.Image, **options) -> bool:
    try:
        detect_landmarks(model, image, **options)
    except InputError:
        return True
    return False


def mirrored_difference(model: KneeModel, image: sitk.Image, original: np.ndarray) -> tuple[float, float]:
    """Mean distance (mm) of the mirrored film's landmarks, mapped back, from the original's (inf when
    refused), and the detection's wall time."""
    flipped = sitk.Flip(image, [True, False])
    flipped.CopyInformation(image)
    started = time.perf_counter()
    try:
        points = detect_landmarks(model, flipped).points[:, :2]
    except InputError:
        return np.inf, time.perf_counter() - started
    seconds = time.perf_counter() - started
    points[:, 0] = (image.GetSize()[0] - 1) * image.GetSpacing()[0] - points[:, 0]
    return float(np.linalg.norm(points - original[:, :2], axis=1).mean()), seconds


def plausibility_lines(model: KneeModel, cases, predicted: np.ndarray) -> list[str]:
    shape = model.shape_model
    if shape is None:
        return ["", "(no shape model in this model file: plausibility not measured)"]
    train = cross_validate(case_shapes(resolve_training_cases("isbi:train")))
    medians, largest = train.per_fold(np.median), train.per_fold(np.max)
    test_truth = [shape.measure(c.senior.points).distance for c in cases]
    test_predicted = [shape.measure(p).distance for p in predicted]
    mirrored = [mirrored_difference(model, c.read_image(), p) for c, p in zip(cases, predicted, strict=True)]
    differences, seconds = np.array([m[0] for m in mirrored]), np.array([m[1] for m in mirrored])
    rng = np.random.default_rng(0)
    noise = sitk.GetImageFromArray(rng.uniform(0, 255, (2400, 1935)).astype(np.uint8))
    noise.SetSpacing((0.1, 0.1))
    blank = sitk.Image(1935, 2400, sitk.sitkUInt8)
    blank.SetSpacing((0.1, 0.1))
    wrong = {s: sum(refused(model, c.read_image(), pixel_size_mm=s) for c in cases[:20]) for s in (0.05, 0.2)}
    found = np.isfinite(differences)
    return [
        "",
        "Plausibility (shape model in the model file; bounds chosen by 5-fold CV on 001-150): Mahalanobis "
        "distance of the landmark configuration",
        "",
        "| set | median distance | largest distance |",
        "|---|---|---|",
        f"| CV on 001-150, truth of the held-out fold (mean ± SD over 5 folds) | {medians.mean():.1f} ± "
        f"{medians.std(ddof=1):.1f} | {largest.mean():.1f} ± {largest.std(ddof=1):.1f} |",
        f"| Test1, senior annotator's landmarks | {np.median(test_truth):.1f} | {np.max(test_truth):.1f} |",
        f"| Test1, this model's landmarks | {np.median(test_predicted):.1f} | {np.max(test_predicted):.1f} |",
        "",
        f"Bounds: refused above {shape.distance_bound:.1f} or beyond ±{shape.size_bound:.0f} SD of log size, "
        f"tried mirrored above {shape.facing_bound:.1f}, heatmap confidence ≥ "
        f"{model.config.get('min_heatmap_confidence', 0):.4f}. Test1 films refused as given: "
        f"{sum(d > shape.distance_bound for d in test_predicted)} of {len(cases)}.",
        f"Every Test1 film mirrored: {found.sum()} of {len(cases)} found and mapped back, mean landmark "
        f"difference from the original film's {differences[found].mean():.3f} mm (largest "
        f"{differences[found].max():.3f} mm), median {np.median(seconds) * 1000:.0f} ms per mirrored film.",
        f"Refused: noise film {refused(model, noise)}, blank film {refused(model, blank)}; the first 20 "
        f"films at half the pixel size {wrong[0.05]} of 20, at double {wrong[0.2]} of 20.",
    ]


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
