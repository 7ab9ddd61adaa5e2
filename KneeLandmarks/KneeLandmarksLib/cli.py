"""``knee-landmarks``: train a KNEEL stage, detect landmarks on 2D radiographs, evaluate detections.

Examples::

    knee-landmarks train --preset cephalometric --data isbi:train --stage 1 -o stage1.pt
    knee-landmarks train --preset cephalometric --data isbi:train --stage 2 --init stage1.pt -o model.pt
    knee-landmarks train --preset cephalometric --data isbi:train --stage 3 --init model.pt \
        --mixup-alpha 0 -o refined.pt                                     # optional refinement stage
    knee-landmarks detect -o out/ 151.jpg 152.jpg --spacing 0.1        # bundled cephalometric model
    knee-landmarks evaluate --predictions out/ --truth truth/ --output report/
    knee-landmarks import-kneel --roi-snapshot lc/ --landmark-snapshot hc/ -o kneel.pt
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from LandmarkCoreLib.batch import MarkupsPerImage
from LandmarkCoreLib.commandline import (
    add_batch_arguments,
    positive_float,
    progress_for,
    run_detect_batch,
    run_subcommand,
)
from LandmarkCoreLib.evaluate_folders import add_evaluate_arguments, run_evaluate
from LandmarkCoreLib.images import IMAGE_SUFFIXES_2D
from LandmarkCoreLib.progress import CancelToken
from LandmarkCoreLib.settings import add_setting_arguments, settings_from_arguments

from .presets import PRESETS
from .train_config import TrainConfig

EVALUATION_RADII_MM = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0)
OUTLIER_MM = 10.0
#: the TrainConfig settings ``train`` takes flags for (the others keep their defaults)
TRAINING_FLAGS = (
    "stage",
    "epochs",
    "batch_size",
    "learning_rate",
    "loss",
    "block",
    "width",
    "depth",
    "dropout",
    "augment.mixup_alpha",
    "augment.p_cutout",
    "augment.target_jitter_px",
    "n_folds",
    "fold",
    "seed",
    "threads",
)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--progress-format", choices=("tqdm", "jsonl"), default="tqdm")


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train stage 1 (ROI centre), stage 2 (all landmarks in the ROI) or 3 (a patch per landmark)",
    )
    p.add_argument("--preset", choices=sorted(PRESETS), default="cephalometric")
    p.add_argument(
        "--data",
        required=True,
        help="'isbi:train' / 'isbi:all' (ISBI 2015 in the data root, senior annotator; append ':mean' or "
        "':junior' for other labels) or IMAGES_DIR:LANDMARKS_DIR "
        "(landmark files .mrk.json/.fcsv/.csv named like the images)",
    )
    p.add_argument(
        "--spacing", type=positive_float, default=None, help="pixel size (mm) of the training images"
    )
    p.add_argument(
        "--init",
        type=Path,
        help="model file to start stage 2 (3) from: its stage 1 (2) as transfer, or its stage 2 (3) to "
        "fine-tune; the output holds its other stages too",
    )
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--checkpoint", type=Path, help="resumable checkpoint (default: OUTPUT.ckpt)")
    add_setting_arguments(p, TrainConfig, TRAINING_FLAGS, required=("stage",))
    p.add_argument(
        "--export-checkpoint",
        action="store_true",
        help="write OUTPUT from the checkpoint's last finished epoch without training further",
    )
    _add_common(p)
    p.set_defaults(run=_run_train)


def _add_detect(sub) -> None:
    p = sub.add_parser("detect", help="detect landmarks; writes one .mrk.json per image")
    p.add_argument("-m", "--model", type=Path, help="model file (default: the bundled cephalometric model)")
    p.add_argument(
        "--spacing", type=positive_float, help="pixel size (mm) overriding the files' own (output in mm)"
    )
    p.add_argument(
        "--pixel-size",
        type=positive_float,
        help="true pixel size (mm) for detection only; output stays in the files' own space "
        "(a JPEG: column, row)",
    )
    p.add_argument("--single-stage", action="store_true", help="skip stage 1 (ROI at the training mean)")
    p.add_argument("--no-refine", action="store_true", help="skip the model's stage 3 (if it has one)")
    add_batch_arguments(p)
    p.set_defaults(run=_run_detect)


def _add_import(sub) -> None:
    p = sub.add_parser("import-kneel", help="convert the KNEEL authors' snapshot folders into a model file")
    p.add_argument("--roi-snapshot", type=Path, required=True, help="ROI ('lc') folder with fold_*.pth")
    p.add_argument("--landmark-snapshot", type=Path, required=True, help="landmark ('hc') folder")
    p.add_argument("--mean-std", type=Path, help="their mean_std.npy")
    p.add_argument(
        "--roi-args", type=Path, help="JSON of the ROI model's training arguments (else session.pkl)"
    )
    p.add_argument("--landmark-args", type=Path, help="JSON of the landmark model's arguments")
    p.add_argument("-o", "--output", type=Path, required=True)
    p.set_defaults(run=_run_import)


def _run_import(args) -> None:
    from .kneel_import import import_kneel_snapshots

    import_kneel_snapshots(
        args.roi_snapshot,
        args.landmark_snapshot,
        args.output,
        args.mean_std,
        args.roi_args,
        args.landmark_args,
    )
    print(f"wrote {args.output}")


def _run_train(args) -> None:
    from .data import resolve_training_cases
    from .presets import get_preset
    from .training import train_stage

    config = settings_from_arguments(TrainConfig, args)
    cases = resolve_training_cases(args.data, args.spacing)
    checkpoint = args.checkpoint or args.output.with_name(args.output.name + ".ckpt")
    cancel = CancelToken()
    train_stage(
        cases,
        get_preset(args.preset),
        config,
        args.output,
        checkpoint,
        args.init,
        progress_for(args, f"stage {config.stage}"),
        cancel,
        export_only=args.export_checkpoint,
    )
    print(f"wrote {args.output}")


@dataclass
class KneeDetector(MarkupsPerImage):
    """One radiograph -> ``stem.mrk.json`` (see LandmarkCoreLib.batch)."""

    model: object
    spacing: float | None
    pixel_size: float | None
    single_stage: bool
    refine: bool

    def detect(self, image, source: Path) -> tuple[object, dict]:
        from .pipeline import detect_landmarks

        if self.spacing is not None:
            image.SetSpacing((self.spacing, self.spacing))
        notices: list[str] = []
        landmarks = detect_landmarks(
            self.model,
            image,
            single_stage=self.single_stage,
            notice=notices.append,
            pixel_size_mm=self.pixel_size,
            refine=self.refine,
        )
        log = {"landmarks": len(landmarks), "notices": notices} if notices else {"landmarks": len(landmarks)}
        return landmarks, log


def _run_detect(args) -> int:
    from .pipeline import KneeModel, default_model_path

    model = KneeModel.load(args.model or default_model_path())
    detector = KneeDetector(model, args.spacing, args.pixel_size, args.single_stage, not args.no_refine)
    return run_detect_batch(args, detector, IMAGE_SUFFIXES_2D)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="knee-landmarks", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_detect(sub)
    _add_import(sub)
    evaluate = sub.add_parser("evaluate", help="compare detections with ground truth (MRE, SDR, CED)")
    add_evaluate_arguments(evaluate)
    evaluate.set_defaults(run=run_evaluate, radii=list(EVALUATION_RADII_MM), outlier_threshold=OUTLIER_MM)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_subcommand(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
