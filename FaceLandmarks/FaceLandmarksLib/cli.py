"""``face-landmarks``: cross-task face landmark detection (Fu et al. 2020) -- train, detect, evaluate.

Examples::

    face-landmarks train-source -o source.pt                       # identity labels of the train split
    face-landmarks train --source source.pt --method CTD-ED --n-labels 50 --seed 0 -o model.pt
    face-landmarks detect -o out/ face1.jpg group.png              # bundled model, every face
    face-landmarks detect -m model.pt --box 40 30 200 210 -o out/ face.jpg
    face-landmarks evaluate --predictions out/ --truth truth/ --output report/
    face-landmarks import-vggface2 resnet50_ft_weight.pkl -o vggface2_source.pt
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from LandmarkCoreLib.commandline import (
    add_batch_arguments,
    finite_float,
    number_in,
    positive_int,
    progress_for,
    run_detect_batch,
    run_subcommand,
)
from LandmarkCoreLib.errors import InputError
from LandmarkCoreLib.evaluate_folders import add_evaluate_arguments, run_evaluate
from LandmarkCoreLib.images import IMAGE_SUFFIXES_2D
from LandmarkCoreLib.progress import CancelToken
from LandmarkCoreLib.settings import add_setting_arguments, settings_from_arguments

from .training import SourceConfig, TargetConfig


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--progress-format", choices=("tqdm", "jsonl"), default="tqdm")
    parser.add_argument("--threads", type=positive_int, default=2, help="CPU threads for torch")


def _add_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-root", type=Path, help="data root (default: ../shared/data or $LANDMARK_DATA_ROOT)"
    )
    parser.add_argument(
        "--cache-dir", type=Path, help="cropped-image cache (default /tmp/face_landmarks_cache)"
    )


def _add_train_source(sub) -> None:
    p = sub.add_parser("train-source", help="train the face-recognition source network on identity labels")
    p.add_argument("-o", "--output", type=Path, required=True)
    add_setting_arguments(p, SourceConfig)
    _add_data(p)
    _add_common(p)
    p.set_defaults(run=_run_train_source)


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a landmark detector with one method on N labelled images")
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--source", type=Path, help="'face-source' model file (all methods but HG)")
    p.add_argument(
        "--init-model",
        type=Path,
        help="'face-model' file whose weights the training starts from (fine-tuning, e.g. the bundled model)",
    )
    add_setting_arguments(p, TargetConfig)
    p.add_argument(
        "--input-size",
        type=number_in(int, 32, 512),
        default=96,
        help="input size (HG only; others take the source's)",
    )
    p.add_argument(
        "--export-checkpoint",
        action="store_true",
        help="write OUTPUT from the checkpoint's last saved step without training further",
    )
    _add_data(p)
    _add_common(p)
    p.set_defaults(run=_run_train)


def _add_detect(sub) -> None:
    p = sub.add_parser("detect", help="detect 68 landmarks; writes one .mrk.json per face")
    p.add_argument("-m", "--model", type=Path, help="'face-model' file (default: the bundled model)")
    p.add_argument(
        "--box",
        type=finite_float,
        nargs=4,
        metavar=("X0", "Y0", "X1", "Y1"),
        help="face box in physical (column, row) coordinates; default: every face the localiser finds",
    )
    p.add_argument(
        "--keep-flagged",
        action="store_true",
        help="write the points even where no face was found (the log says so; the input counts as done)",
    )
    add_batch_arguments(p)
    p.set_defaults(run=_run_detect)


def _add_import(sub) -> None:
    p = sub.add_parser(
        "import-vggface2", help="convert published VGGFace2 ResNet-50 weights to a source model"
    )
    p.add_argument("weights", type=Path, help="the authors' .pkl (numpy arrays) or a PyTorch state dict .pth")
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--input-size", type=int, default=224)
    p.set_defaults(run=_run_import)


def _data_splits(args, input_size: int):
    from .data import load_cached_split

    train = load_cached_split("train", input_size, args.data_root, args.cache_dir)
    test = load_cached_split("test", input_size, args.data_root, args.cache_dir)
    return train, test


def _run_train_source(args) -> None:
    from .training import train_source

    torch.set_num_threads(args.threads)
    config = settings_from_arguments(SourceConfig, args)
    train, test = _data_splits(args, config.input_size)
    model = train_source(
        train,
        config,
        args.output,
        test,
        progress_for(args, "source"),
        CancelToken(),
        log=lambda m: print(m, file=sys.stderr),
    )
    print(f"wrote {args.output} ({model.config['metrics']})")


def _run_train(args) -> None:
    from LandmarkCoreLib.modelfile import load_model_file

    from .training import MODEL_KIND, SOURCE_KIND, train_target

    torch.set_num_threads(args.threads)
    config = settings_from_arguments(TargetConfig, args)
    source = load_model_file(args.source, SOURCE_KIND) if args.source else None
    initial = load_model_file(args.init_model, MODEL_KIND) if args.init_model else None
    input_size = source.config["input_size"] if source else args.input_size
    train, _ = _data_splits(args, input_size)
    train_target(
        train,
        config,
        args.output,
        source,
        progress_for(args, args.method),
        CancelToken(),
        log=lambda m: print(m, file=sys.stderr),
        export_only=args.export_checkpoint,
        initial_model=initial,
    )
    print(f"wrote {args.output}")


#: Faces after the largest go to ``<stem>.faces/face<k>.mrk.json``: a folder, so that no other input's
#: ``<its stem>.mrk.json`` can ever take the name (the batch runner keeps the stems distinct).
EXTRA_FACES_FOLDER = "{stem}.faces"


@dataclass
class FaceDetector:
    """One photograph -> ``stem.mrk.json`` (the largest face) and, with several faces, each further face
    in ``stem.faces/face2.mrk.json``, ``face3`` ... by decreasing size; no face found -> failed (unless
    ``keep_flagged``: the best guess is written and the log says so)."""

    model: object
    box: list[float] | None
    keep_flagged: bool

    def output_names(self, stem: str) -> list[str]:
        return [f"{stem}.mrk.json"]

    def __call__(self, source: Path, stem: str, output: Path) -> dict:
        from LandmarkCoreLib.images import read_image
        from LandmarkCoreLib.landmarks import write_landmarks

        from .pipeline import detect_every_face

        extra = output / EXTRA_FACES_FOLDER.format(stem=stem)
        shutil.rmtree(extra, ignore_errors=True)  # the faces of an earlier run
        image = read_image(source, "image", dimension=2)
        faces = detect_every_face(self.model, image, self.box, what=f"image '{source}'")
        peak = float(faces[0].peak_confidence.mean())
        if faces[0].flagged_no_face and not self.keep_flagged:
            raise InputError(f"image '{source}'", f"no face found ({faces[0].reason})")
        paths = [output / f"{stem}.mrk.json"] + [
            extra / f"face{k}.mrk.json" for k in range(2, len(faces) + 1)
        ]
        if len(faces) > 1:
            extra.mkdir()
        for face, path in zip(faces, paths, strict=True):
            write_landmarks(path, face.landmarks)
        return {
            "no_face_flagged": bool(faces[0].flagged_no_face),
            "mean_peak": round(peak, 3),
            "faces": len(faces),
            "outputs": [str(p) for p in paths],
        }


def _run_detect(args) -> int:
    from .pipeline import FaceModel

    detector = FaceDetector(FaceModel.load(args.model), args.box, args.keep_flagged)
    return run_detect_batch(args, detector, IMAGE_SUFFIXES_2D)


def _run_import(args) -> None:
    from LandmarkCoreLib.modelfile import save_model_file

    from .vggface2_import import import_vggface2

    save_model_file(args.output, import_vggface2(args.weights, args.input_size))
    print(f"wrote {args.output}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="face-landmarks", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train_source(sub)
    _add_train(sub)
    _add_detect(sub)
    _add_import(sub)
    evaluate = sub.add_parser("evaluate", help="NME (outer-eye-corner distance), CED AUC and failure rate")
    add_evaluate_arguments(evaluate)
    evaluate.set_defaults(
        run=run_evaluate,
        normalize_by=["36", "45"],
        radii=[0.05, 0.08, 0.10],
        auc_threshold=0.08,
        failure_threshold=0.08,
        outlier_threshold=0.10,
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_subcommand(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
