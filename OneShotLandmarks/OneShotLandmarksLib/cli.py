"""``oneshot-landmarks train|detect|evaluate`` — the command-line face of the one-shot engine."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from LandmarkCoreLib.atomic import write_text_atomic
from LandmarkCoreLib.commandline import run_command
from LandmarkCoreLib.errors import LandmarkError
from LandmarkCoreLib.evaluation import add_evaluate_arguments, run_evaluate
from LandmarkCoreLib.images import read_image
from LandmarkCoreLib.landmarks import read_landmarks, write_landmarks
from LandmarkCoreLib.progress import CancelToken, json_lines_progress, tqdm_progress
from LandmarkCoreLib.segmentations import read_mask

from .config import DetectionConfig, TrainingConfig
from .model import OneShotModel
from .pipeline import METHODS, detect_landmarks, train_model
from .qc import write_qc_png

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")


def _progress(args: argparse.Namespace, description: str):
    return json_lines_progress() if args.progress_format == "jsonl" else tqdm_progress(description)


def image_stem(path: Path) -> str:
    name = path.name
    for suffix in IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def expand_targets(paths: list[Path]) -> list[Path]:
    """Files as given; folders -> their image files (a folder without any is taken as a DICOM series)."""
    targets: list[Path] = []
    for path in paths:
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.name.lower().endswith(IMAGE_SUFFIXES))
            targets.extend(files or [path])
        else:
            targets.append(path)
    return targets


def _train(args: argparse.Namespace) -> int:
    config = TrainingConfig(
        width=args.width,
        working_spacing_mm=args.spacing,
        max_epochs=args.max_epochs,
        patience=args.patience,
        volumes_per_epoch=args.volumes_per_epoch,
        seed=args.seed,
        device=args.device,
    )
    reference = read_image(args.reference, "reference image", dimension=3)
    validation = read_image(args.validation, "validation image", dimension=3)
    model = train_model(
        reference,
        read_landmarks(args.reference_landmarks, "reference landmarks"),
        read_mask(args.reference_soi, args.soi_segment, reference, "reference SOI mask"),
        validation,
        read_mask(args.validation_soi, args.soi_segment, validation, "validation SOI mask"),
        config,
        DetectionConfig(),
        _progress(args, "training"),
        None,
        args.checkpoint or args.output.with_name(args.output.name + ".checkpoint"),
    )
    model.save(args.output)
    summary = model.training_summary
    print(
        f"model written to {args.output}: {summary['epochs']} epochs, best validation loss "
        f"{summary['best_validation_loss']:.4f} (epoch {summary['best_epoch'] + 1}), "
        f"{summary['total_seconds']:.0f} s",
        file=sys.stderr,
    )
    return 0


def _detect_one(model: OneShotModel, path: Path, args: argparse.Namespace, cancel: CancelToken) -> dict:
    stem = image_stem(path)
    started = time.perf_counter()
    try:
        image = read_image(path, "target image", dimension=3)
        result = detect_landmarks(
            model, image, args.method, _progress(args, stem), cancel, args.device, args.seed
        )
    except LandmarkError as exc:
        print(f"{path}: FAILED: {exc}", file=sys.stderr)
        return {
            "target": str(path),
            "status": "failed",
            "error": str(exc),
            "seconds": time.perf_counter() - started,
        }
    result.landmarks.name = stem
    write_landmarks(args.output / f"{stem}.mrk.json", result.landmarks)
    write_qc_png(
        args.output / f"{stem}_qc.png",
        result.qc["patch"],
        result.qc["patch_points"],
        f"{stem} ({args.method})",
    )
    return {"target": str(path), "status": "ok", **result.log(), "seconds": time.perf_counter() - started}


def _detect(args: argparse.Namespace) -> int:
    model = OneShotModel.load(args.model)
    targets = expand_targets(args.targets)
    cancel = CancelToken()
    records = [_detect_one(model, path, args, cancel) for path in targets]
    log = {
        "model": str(args.model),
        "method": args.method,
        "targets": records,
        "median_seconds": float(np.median([r["seconds"] for r in records])) if records else None,
    }
    write_text_atomic(args.output / f"detection_log_{args.method}.json", json.dumps(log, indent=1))
    failed = [r["target"] for r in records if r["status"] != "ok"]
    print(
        f"{len(records) - len(failed)} of {len(records)} targets done, results in {args.output}"
        + (f"; failed: {', '.join(failed)}" if failed else ""),
        file=sys.stderr,
    )
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="oneshot-landmarks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--progress-format", choices=("tqdm", "jsonl"), default="tqdm")
    common.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    train = sub.add_parser("train", parents=[common], help="train a one-shot model (Algorithm 1)")
    train.add_argument("--reference", type=Path, required=True)
    train.add_argument("--reference-landmarks", type=Path, required=True)
    train.add_argument("--reference-soi", type=Path, required=True)
    train.add_argument("--validation", type=Path, required=True)
    train.add_argument("--validation-soi", type=Path, required=True)
    train.add_argument("--soi-segment", default=None, help="segment name or label value in the SOI files")
    train.add_argument("-o", "--output", type=Path, required=True, help="model file to write")
    train.add_argument("--checkpoint", type=Path, help="resumable checkpoint (default: OUTPUT.checkpoint)")
    defaults = TrainingConfig()
    train.add_argument("--width", type=int, default=defaults.width, help="U-Net channels (paper: 64)")
    train.add_argument(
        "--spacing", type=float, default=defaults.working_spacing_mm, help="working spacing, mm"
    )
    train.add_argument("--max-epochs", type=int, default=defaults.max_epochs)
    train.add_argument("--patience", type=int, default=defaults.patience)
    train.add_argument("--volumes-per-epoch", type=int, default=defaults.volumes_per_epoch)
    train.add_argument("--seed", type=int, default=defaults.seed)
    train.set_defaults(run=_train)
    detect = sub.add_parser("detect", parents=[common], help="detect landmarks in target images")
    detect.add_argument("-m", "--model", type=Path, required=True)
    detect.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    detect.add_argument("--method", choices=METHODS, default="oneshot")
    detect.add_argument("--seed", type=int, default=0, help="seed of the registrations' metric sampling")
    detect.add_argument("targets", type=Path, nargs="+", help="image files or folders")
    detect.set_defaults(run=_detect)
    evaluate = sub.add_parser("evaluate", help="score predictions against truth landmarks")
    add_evaluate_arguments(evaluate)
    evaluate.set_defaults(run=run_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("oneshot-landmarks", lambda: args.run(args))


if __name__ == "__main__":
    sys.exit(main())
