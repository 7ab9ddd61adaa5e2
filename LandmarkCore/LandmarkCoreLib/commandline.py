"""What the three console commands share: the ``detect`` flags, and how a run ends on a user error or an
interrupt (exit codes: 0 all done, 1 some inputs failed, 2 usage error, 130 cancelled)."""

from __future__ import annotations

import argparse
import math
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .batch import (
    EXIT_INTERRUPTED,
    EXIT_USER_ERROR,
    Detector,
    InProcess,
    plan_batch,
    require_writable_folder,
    run_batch,
)
from .errors import InputError, LandmarkError
from .progress import ProgressCallback, json_lines_progress, tqdm_progress

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_USER_ERROR",
    "add_batch_arguments",
    "run_command",
    "run_detect_batch",
    "run_subcommand",
]


def run_command(program: str, command: Callable[[], object]) -> int:
    """Run ``command`` and turn the errors a user can cause into one line on stderr and an exit code.

    ``command`` returns an exit code; anything else it returns (None, a report) means success. A
    :class:`LandmarkError` is reported with its message (which names the input and the problem);
    Ctrl-C or Cancel ends the run quietly, with what was already saved (checkpoints, finished targets)
    kept.
    """
    # A process started in the background by a non-interactive shell inherits SIGINT as *ignored*,
    # and Python then installs no handler: Cancel would be lost until the runner's hard terminate.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code = command()
        return code if isinstance(code, int) else 0
    except LandmarkError as exc:
        print(f"{program}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"{program}: interrupted; what was saved (e.g. the last checkpoint) is kept", file=sys.stderr)
        return EXIT_INTERRUPTED


def run_subcommand(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the sub-command it names (the ``run`` its sub-parser sets) under
    :func:`run_command`, as program ``parser.prog``."""
    args = parser.parse_args(argv)
    return run_command(parser.prog, lambda: args.run(args))


def add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags every ``detect`` command takes: inputs, ``-o/--output``, device, threads, executor."""
    parser.add_argument(
        "inputs", nargs="+", help="image files, folders (searched recursively), globs, DICOM folders"
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads per process")
    parser.add_argument("--progress-format", choices=("tqdm", "jsonl"), default="tqdm")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--workers", type=positive_int, help="run on a local Dask cluster of N worker processes"
    )
    where.add_argument(
        "--scheduler", help="run on an existing dask.distributed scheduler (e.g. tcp://host:8786)"
    )


def number_in(kind: type, minimum: float, maximum: float) -> Callable[[str], float]:
    """argparse type: a finite ``kind`` (int or float) in [minimum, maximum]; else a usage error."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a {kind.__name__}") from None
        if not math.isfinite(value) or not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"{text} must be in [{minimum:g}, {maximum:g}]")
        return value

    parse.__name__ = kind.__name__
    return parse


positive_int = number_in(int, 1, 10**6)
positive_float = number_in(float, 1e-6, 1e6)
finite_float = number_in(float, -1e9, 1e9)


def progress_for(args: argparse.Namespace, description: str) -> ProgressCallback:
    """tqdm bar or JSON lines (``--progress-format jsonl``, how Slicer follows a background job)."""
    return json_lines_progress() if args.progress_format == "jsonl" else tqdm_progress(description)


def run_detect_batch(args: argparse.Namespace, detector: Detector, suffixes: Sequence[str]) -> int:
    """Plan the inputs of ``args`` (refusing an unwritable output first), run them, return the exit code."""
    items, unusable = plan_batch(args.inputs, suffixes)
    require_writable_folder(args.output)
    if args.workers or args.scheduler:
        try:
            from .dask_executor import DaskExecutor
        except ImportError:
            raise InputError(
                "--workers/--scheduler",
                "need dask.distributed: pip install 'slicer-landmark-detection[dask]'",
            ) from None

        executor = DaskExecutor(workers=args.workers, scheduler=args.scheduler, threads=args.threads)
    else:
        executor = InProcess()
    return run_batch(
        detector, items, args.output, unusable, progress_for(args, "detect"), executor, args.threads
    )
