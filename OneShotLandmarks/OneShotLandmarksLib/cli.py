"""``oneshot-landmarks train|detect|evaluate`` — the command-line face of the one-shot engine."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from LandmarkCoreLib.commandline import add_batch_arguments, progress_for, run_detect_batch, run_subcommand
from LandmarkCoreLib.evaluate_folders import add_evaluate_arguments, run_evaluate
from LandmarkCoreLib.images import IMAGE_SUFFIXES_3D, read_image
from LandmarkCoreLib.landmarks import read_landmarks, write_landmarks
from LandmarkCoreLib.progress import no_progress
from LandmarkCoreLib.segmentations import read_mask
from LandmarkCoreLib.settings import add_setting_arguments, settings_from_arguments

from .config import DetectionConfig, TrainingConfig
from .model import OneShotModel
from .pipeline import METHODS, detect_landmarks, train_model
from .qc import write_qc_png


def _train(args: argparse.Namespace) -> int:
    config = settings_from_arguments(TrainingConfig, args)
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
        progress_for(args, "training"),
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


@dataclass
class OneShotDetector:
    """One target volume -> ``stem.mrk.json`` and ``stem_qc.png`` (see LandmarkCoreLib.batch)."""

    model: OneShotModel
    method: str
    device: str
    seed: int

    def output_names(self, stem: str) -> list[str]:
        return [f"{stem}.mrk.json", f"{stem}_qc.png"]

    def __call__(self, source: Path, stem: str, output: Path) -> dict:
        image = read_image(source, "target image", dimension=3)
        result = detect_landmarks(self.model, image, self.method, no_progress, None, self.device, self.seed)
        result.landmarks.name = stem
        write_landmarks(output / f"{stem}.mrk.json", result.landmarks)
        qc = result.qc
        write_qc_png(output / f"{stem}_qc.png", qc["patch"], qc["patch_points"], f"{stem} ({self.method})")
        return result.log()


def _detect(args: argparse.Namespace) -> int:
    detector = OneShotDetector(OneShotModel.load(args.model), args.method, args.device, args.seed)
    return run_detect_batch(args, detector, IMAGE_SUFFIXES_3D)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="oneshot-landmarks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a one-shot model (Algorithm 1)")
    train.add_argument("--progress-format", choices=("tqdm", "jsonl"), default="tqdm")
    train.add_argument("--reference", type=Path, required=True)
    train.add_argument("--reference-landmarks", type=Path, required=True)
    train.add_argument("--reference-soi", type=Path, required=True)
    train.add_argument("--validation", type=Path, required=True)
    train.add_argument("--validation-soi", type=Path, required=True)
    train.add_argument("--soi-segment", default=None, help="segment name or label value in the SOI files")
    train.add_argument("-o", "--output", type=Path, required=True, help="model file to write")
    train.add_argument("--checkpoint", type=Path, help="resumable checkpoint (default: OUTPUT.checkpoint)")
    add_setting_arguments(train, TrainingConfig)
    train.set_defaults(run=_train)
    detect = sub.add_parser("detect", help="detect landmarks in target images")
    detect.add_argument("-m", "--model", type=Path, required=True)
    detect.add_argument("--method", choices=METHODS, default="oneshot")
    detect.add_argument("--seed", type=int, default=0, help="seed of the registrations' metric sampling")
    add_batch_arguments(detect)
    detect.set_defaults(run=_detect)
    evaluate = sub.add_parser("evaluate", help="score predictions against truth landmarks")
    add_evaluate_arguments(evaluate)
    evaluate.set_defaults(run=run_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_subcommand(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
