"""Face landmarks benchmark (YouTube-Faces 68 points, test split): the few-label protocol of Fu et al.
2020 (FE, FTP, FT, CTD-CD, CTD-ED, CTD-Com, HG x labelled images x seeds), the default model through
the full detection pipeline beside dlib's 68-point shape predictor (same face boxes, same
normalisation), and the detection time per face.

    python benchmarks/face_benchmark.py                 # full grid (resumes finished runs)
    python benchmarks/face_benchmark.py --quick         # smoke run: 50 labels, 1 seed, few steps
    python benchmarks/face_benchmark.py --grid-off --dlib      # bundled model vs dlib, speed

Runs and their scores are kept in --work (default /tmp/face_benchmark) so an interrupted benchmark
continues where it stopped. The table is printed and written to benchmarks/results/face_benchmark.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from FaceLandmarksLib.data import box_from_points, load_cached_split
from FaceLandmarksLib.methods import METHODS
from FaceLandmarksLib.pipeline import (
    NO_FACE_DISAGREEMENT,
    NO_FACE_PEAK,
    FaceModel,
    default_model_path,
    detect_landmarks,
)
from FaceLandmarksLib.scoring import THRESHOLDS, face_metrics, normalised_errors, predict_cached
from FaceLandmarksLib.training import SourceConfig, TargetConfig, train_source, train_target
from LandmarkCoreLib.atomic import write_text_atomic
from LandmarkCoreLib.datasets import youtube_faces_samples
from LandmarkCoreLib.images import read_image
from LandmarkCoreLib.modelfile import load_model_file

RESULTS = Path(__file__).resolve().parent / "results"
METRIC_KEYS = [
    "NME",
    f"AUC@{THRESHOLDS[0]}",
    f"FR@{THRESHOLDS[0]}",
    f"AUC@{THRESHOLDS[1]}",
    f"FR@{THRESHOLDS[1]}",
]


def log(message: str) -> None:
    print(time.strftime("%H:%M:%S"), message, file=sys.stderr, flush=True)


def run_key(method: str, labels: int, seed: int, args) -> str:
    """One grid run; the shared settings (steps, batch size) are part of it so that a grid with other
    settings in the same --work folder never picks up these scores."""
    return f"{method}|{labels}|{seed}|{args.steps}|{args.batch_size}"


def score_file(work: Path, key: str) -> Path:
    return work / "scores" / (key.replace("|", "_") + ".json")


def load_scores(work: Path) -> dict[str, dict]:
    return {
        json.loads(p.read_text())["key"]: json.loads(p.read_text()) for p in (work / "scores").glob("*.json")
    }


def base_config(args) -> TargetConfig:
    """The target-training settings every run of the grid shares."""
    return TargetConfig(steps=args.steps, batch_size=args.batch_size, checkpoint_every=200)


def grid(args, work: Path, source_path: Path | None) -> dict[str, dict]:
    """Train and score every (labels, seed, method) run not yet scored; one file per run."""
    source = load_model_file(source_path, "face-source") if source_path is not None else None
    size = source.config["input_size"] if source is not None else args.input_size
    train, test = load_cached_split("train", size), load_cached_split("test", size)
    for labels in args.labels:
        for seed in args.seeds:
            for method in args.methods:
                key = run_key(method, labels, seed, args)
                if score_file(work, key).is_file() or args.report_only:
                    continue
                config = replace(base_config(args), method=method, n_labels=labels, seed=seed)
                started = time.time()
                model = train_target(train, config, work / (key.replace("|", "_") + ".pt"), source, log=log)
                pred, truth, _ = predict_cached(FaceModel.from_model_file(model), test)
                metrics = face_metrics(normalised_errors(pred, truth), test.names)
                metrics.update(key=key, train_seconds=time.time() - started)
                write_text_atomic(score_file(work, key), json.dumps(metrics, indent=1))
                log(f"{key}: NME {metrics['NME']:.4f} ({metrics['train_seconds']:.0f} s)")
    return load_scores(work)


def grid_table(scores: dict[str, dict], args) -> str:
    lines = [
        f"### Few-label protocol: test-split NME (mean ± SD over seeds {args.seeds}), {args.steps} steps",
        "",
        "| method | " + " | ".join(f"{n or 'all'} labels" for n in args.labels) + " |",
        "|---|" + "---|" * len(args.labels),
    ]
    for method in args.methods:
        cells = []
        for labels in args.labels:
            values = [
                scores[k]["NME"] for s in args.seeds if (k := run_key(method, labels, s, args)) in scores
            ]
            if not values:
                cells.append("not run")
            else:
                sd = f" ± {np.std(values, ddof=1):.4f}" if len(values) > 1 else " (1 seed)"
                cells.append(
                    f"{np.mean(values):.4f}{sd}"
                    + (f" (n={len(values)})" if 1 < len(values) < len(args.seeds) else "")
                )
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    detail = [
        "",
        "AUC / failure rate (mean over seeds):",
        "",
        "| method | labels | " + " | ".join(METRIC_KEYS[1:]) + " |",
        "|---|---|" + "---|" * 4,
    ]
    for method in args.methods:
        for labels in args.labels:
            runs = [scores[k] for s in args.seeds if (k := run_key(method, labels, s, args)) in scores]
            if runs:
                detail.append(
                    f"| {method} | {labels or 'all'} | "
                    + " | ".join(f"{np.mean([r[m] for r in runs]):.3f}" for m in METRIC_KEYS[1:])
                    + " |"
                )
    return "\n".join(lines + detail + cross_task_gain(scores, args)) + "\n"


def cross_task_gain(scores: dict[str, dict], args) -> list[str]:
    """The paper's claim, checked: each CTD variant minus FT, paired by seed (same labelled images)."""
    lines = [
        "",
        "CTD minus FT, paired by seed (negative = CTD better); 'beyond SD' when the mean gain exceeds both",
        "methods' seed SD:",
        "",
        "| method | labels | mean difference | per seed | beyond SD |",
        "|---|---|---|---|---|",
    ]
    for method in (m for m in args.methods if m.startswith("CTD")):
        for labels in args.labels:
            pairs = [
                (scores[k]["NME"], scores[f]["NME"])
                for s in args.seeds
                if (k := run_key(method, labels, s, args)) in scores
                and (f := run_key("FT", labels, s, args)) in scores
            ]
            if len(pairs) < 2:
                continue
            ctd, ft = np.array(pairs).T
            gain = float(np.mean(ctd - ft))
            beyond = -gain > max(np.std(ctd, ddof=1), np.std(ft, ddof=1))
            per_seed = ", ".join(f"{d:+.4f}" for d in ctd - ft)
            lines.append(
                f"| {method} | {labels or 'all'} | {gain:+.4f} | {per_seed} | {'yes' if beyond else 'no'} |"
            )
    return lines


def dlib_predictor():
    """dlib and its 68-point predictor from the face_recognition_models package (its __init__ needs
    pkg_resources, which new setuptools dropped, so the file is located without importing it)."""
    import importlib.util

    import dlib

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("face_recognition_models is not installed")
    model = (
        Path(list(spec.submodule_search_locations)[0]) / "models" / "shape_predictor_68_face_landmarks.dat"
    )
    return dlib, dlib.shape_predictor(str(model))


def pipeline_comparison(args) -> str:
    """The default model through detect_landmarks on the real test JPEGs, dlib from the same boxes."""
    samples = youtube_faces_samples("test")
    model = FaceModel.load(args.model)
    predictors = {"this model": None}
    if args.dlib:
        try:
            dlib, predictor = dlib_predictor()
            predictors["dlib 68-point shape predictor"] = predictor
        except ImportError as exc:
            log(f"dlib not available ({exc}); `pip install dlib-bin face_recognition_models`")
    preds = {name: [] for name in predictors}
    times, flagged, face_peaks = [], 0, []
    truths = []
    for sample in samples:
        image = read_image(sample.image, "face image", dimension=2)
        box = tuple(float(round(v)) for v in box_from_points(sample.points))
        truths.append(sample.points)
        started = time.perf_counter()
        detection = detect_landmarks(model, image, box)
        times.append(time.perf_counter() - started)
        flagged += detection.flagged_no_face
        face_peaks.append((float(detection.peak_confidence.mean()), detection.heatmap_disagreement))
        preds["this model"].append(detection.landmarks.points)
        if "dlib 68-point shape predictor" in predictors:
            rgb = sitk.GetArrayFromImage(image).astype(np.uint8)
            shape = predictors["dlib 68-point shape predictor"](rgb, dlib.rectangle(*(int(v) for v in box)))
            preds["dlib 68-point shape predictor"].append(
                np.array([[p.x, p.y] for p in shape.parts()], float)
            )
    truth = np.stack(truths)
    names = [s.image.name for s in samples]
    lines = [
        f"### Test split ({len(samples)} real JPEGs), full pipeline, face box = landmark box + 10 %",
        "",
        "| detector | " + " | ".join(METRIC_KEYS) + " |",
        "|---|" + "---|" * len(METRIC_KEYS),
    ]
    for name, points in preds.items():
        m = face_metrics(normalised_errors(np.stack(points), truth), names)
        lines.append(
            f"| {name} | "
            + " | ".join(f"{m[k]:.4f}" if k == "NME" else f"{m[k]:.3f}" for k in METRIC_KEYS)
            + " |"
        )
    lines += [
        "",
        f"Model: `{Path(args.model).name}` ({model.config['architecture']}, input {model.input_size} px).",
        f"Detection time per face (crop + network + decoding, no file I/O, "
        f"{torch.get_num_threads()} threads): "
        f"median {1000 * np.median(times):.1f} ms, 90th percentile {1000 * np.percentile(times, 90):.1f} ms.",
        f"Faces flagged as 'no face' (mean heatmap peak below threshold): {flagged} of {len(samples)}.",
        "",
    ]
    return "\n".join(lines) + "\n" + no_face_check(model, face_peaks)


def no_face_check(model: FaceModel, faces: list[tuple[float, float]]) -> str:
    """Mean heatmap peak and arg-max/soft-argmax disagreement on the real test faces vs. on images
    without a face (20 cephalograms of the data root, 20 noise images), and what the flag catches."""
    from LandmarkCoreLib.datasets import isbi_cases

    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 255, (160, 160, 3)).astype(np.uint8) for _ in range(20)]
    others = {
        "cephalogram (whole image)": [c.read_image() for c in isbi_cases("all")[:20]],
        "uniform noise 160x160 RGB": [sitk.GetImageFromArray(a, isVector=True) for a in noise],
    }
    stats = {
        "real test faces (boxes)": (
            np.array(faces),
            sum(p < NO_FACE_PEAK and d > NO_FACE_DISAGREEMENT for p, d in faces),
        )
    }
    for name, images in others.items():
        detections = [detect_landmarks(model, image) for image in images]
        values = np.array([(d.peak_confidence.mean(), d.heatmap_disagreement) for d in detections])
        stats[name] = (values, sum(d.flagged_no_face for d in detections))
    rows = [
        f"| {name} | {v[:, 0].min():.3f}-{v[:, 0].max():.3f} | {v[:, 1].min():.2f}-{v[:, 1].max():.2f} | "
        f"{flagged} of {len(v)} |"
        for name, (v, flagged) in stats.items()
    ]
    title = (
        f"### 'No face' flag (mean peak < {NO_FACE_PEAK} and arg-max/soft-argmax disagreement > "
        f"{NO_FACE_DISAGREEMENT} heatmap px)"
    )
    header = ["| input | mean peak (range) | disagreement (range) | flagged |", "|---|---|---|---|"]
    return "\n".join([title, "", *header, *rows]) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/face_benchmark"))
    parser.add_argument(
        "--source", type=Path, help="'face-source' file (default: WORK/source.pt, trained if missing)"
    )
    parser.add_argument("--source-epochs", type=int, default=SourceConfig.epochs)
    parser.add_argument("--labels", type=int, nargs="+", default=[50, 200, 0], help="0 = all labels")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--steps", type=int, default=TargetConfig.steps)
    parser.add_argument("--batch-size", type=int, default=TargetConfig.batch_size)
    parser.add_argument(
        "--input-size", type=int, default=SourceConfig.input_size, help="input size without source"
    )
    parser.add_argument("--quick", action="store_true", help="50 labels, seed 0, 60 steps (a smoke run)")
    parser.add_argument("--grid-off", action="store_true", help="skip the few-label grid")
    parser.add_argument("--report-only", action="store_true", help="tabulate finished runs, train nothing")
    parser.add_argument(
        "--model", type=Path, default=default_model_path(), help="model for the pipeline table"
    )
    parser.add_argument(
        "--dlib", action="store_true", help="add dlib's 68-point predictor (benchmark-only dependency)"
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "face_benchmark.md")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (1 is faster on a crowded CPU)")
    args = parser.parse_args(argv)
    if args.quick:
        args.labels, args.seeds, args.steps = [50], [0], 60
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    command = " ".join(argv if argv is not None else sys.argv[1:])
    sections = [
        "# Face landmarks benchmark (YouTube-Faces 68 points)\n",
        f"Command: `python benchmarks/face_benchmark.py {command}`\n",
    ]
    if not args.grid_off:
        needs_source = any(METHODS[m].needs_source for m in args.methods)
        source_path = (args.source or args.work / "source.pt") if needs_source else None
        if needs_source and not source_path.is_file():
            config = SourceConfig(epochs=args.source_epochs)
            size = config.input_size
            train_source(
                load_cached_split("train", size),
                config,
                source_path,
                load_cached_split("test", size),
                log=log,
            )
        if source_path is not None:
            source_config = load_model_file(source_path, "face-source").config
            sections.append(
                f"Source: `{source_path.name}`, {source_config['architecture']}, "
                f"identity accuracy on the test split {source_config.get('metrics')}.\n"
            )
        sections.append(f"Target config {asdict(base_config(args))} (method, labels and seed vary).\n")
        sections.append(grid_table(grid(args, args.work, source_path), args))
    if args.model is not None and Path(args.model).is_file():
        sections.append(pipeline_comparison(args))
    text = "\n".join(sections)
    print(text)
    write_text_atomic(args.output, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
