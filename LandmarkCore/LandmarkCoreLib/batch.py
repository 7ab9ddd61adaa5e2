"""One batch runner for the three ``detect`` commands: inputs, output names, the batch log, exit codes.

Every input ends as ``done`` or ``failed`` (with its reason) or, after Ctrl-C, ``cancelled``; one bad input
never stops the others. The log is ``batch_log.jsonl`` (one JSON object per input, appended as each ends)
and ``batch_summary.md`` (a table), both in the output folder and both written also on Ctrl-C.
"""

from __future__ import annotations

import glob
import json
import os
import tempfile
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .atomic import write_text_atomic
from .errors import InputError, LandmarkError
from .images import image_stem
from .progress import ProgressCallback

EXIT_ALL_DONE = 0
EXIT_SOME_FAILED = 1
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
LOG_NAME = "batch_log.jsonl"
SUMMARY_NAME = "batch_summary.md"
_GLOB_CHARACTERS = "*?["


@dataclass(frozen=True)
class BatchInput:
    """One unit of work: an image file or a DICOM series folder, and the stem its outputs are named by."""

    source: Path
    stem: str


class Detector(Protocol):
    """What a module gives the runner: picklable (it travels to Dask workers once), model loaded."""

    def output_names(self, stem: str) -> list[str]:
        """The files one input writes into the output folder."""

    def __call__(self, source: Path, stem: str, output: Path) -> dict:
        """Detect on ``source``, write the outputs, return extra fields for the log."""


class MarkupsPerImage(ABC):
    """A :class:`Detector` of the 2D modules: one image in, ``stem.mrk.json`` out."""

    @abstractmethod
    def detect(self, image: Any, source: Path) -> tuple[Any, dict]:
        """The landmarks found in ``image`` (read from ``source``) and the extra fields for the log."""

    def output_names(self, stem: str) -> list[str]:
        return [f"{stem}.mrk.json"]

    def __call__(self, source: Path, stem: str, output: Path) -> dict:
        from .images import read_image
        from .landmarks import write_landmarks

        landmarks, log = self.detect(read_image(source, "image", dimension=2), source)
        write_landmarks(output / f"{stem}.mrk.json", landmarks)
        return log


def _is_dicom_series(folder: Path) -> bool:
    import SimpleITK as sitk

    return bool(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)))


def _folder_inputs(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Image files under ``folder`` (recursing); a folder of DICOM slices without such files is one series."""
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        images = sorted(
            Path(root, f) for f in files if f.lower().endswith(suffixes) and not f.startswith(".")
        )
        if images:
            found.extend(images)
        elif files and _is_dicom_series(Path(root)):
            found.append(Path(root))
    return found


def expand_inputs(arguments: Iterable[str | os.PathLike], suffixes: Sequence[str]) -> tuple[list[Path], dict]:
    """(inputs in order, without repeats; {argument: why it gave none}) from files, folders and globs."""
    suffixes = tuple(s.lower() for s in suffixes)
    inputs: list[Path] = []
    unusable: dict[str, str] = {}
    for argument in map(str, arguments):
        path = Path(argument)
        if path.is_dir():
            found = _folder_inputs(path, suffixes)
            reason = f"folder holds no image ({', '.join(suffixes)}) and no DICOM series"
        elif path.exists():
            found, reason = [path], ""
        elif any(c in argument for c in _GLOB_CHARACTERS):
            found = [Path(p) for p in sorted(glob.glob(argument, recursive=True)) if Path(p).is_file()]
            reason = "pattern matches no file"
        else:
            found, reason = [], "file does not exist"
        if not found:
            unusable[argument] = reason
        inputs.extend(p for p in found if p.resolve() not in {q.resolve() for q in inputs})
    return inputs, unusable


def output_stems(inputs: Sequence[Path]) -> list[str]:
    """A distinct, predictable stem per input: the name without its image suffix, and where two inputs
    share it, the folders that tell them apart (``a/skull.nii.gz``, ``b/skull.nii.gz`` -> ``a_skull``,
    ``b_skull``), or the whole file name (``skull.nrrd`` beside ``skull.nii.gz``)."""
    stems = [image_stem(p) for p in inputs]
    counts = Counter(stems)
    resolved = [p.resolve() for p in inputs]
    for stem in [s for s, n in counts.items() if n > 1]:
        group = [i for i, s in enumerate(stems) if s == stem]
        common = Path(os.path.commonpath([resolved[i].parent for i in group]))
        for i in group:
            folders = resolved[i].parent.relative_to(common).parts
            stems[i] = "_".join((*folders, stem))
        still = Counter(stems[i] for i in group)
        for i in (i for i in group if still[stems[i]] > 1):
            stems[i] = "_".join((*resolved[i].parent.relative_to(common).parts, inputs[i].name))
    return stems


def plan_batch(
    arguments: Iterable[str | os.PathLike], suffixes: Sequence[str]
) -> tuple[list[BatchInput], dict]:
    """The inputs with their output stems, and the arguments that gave no input (each a failed record)."""
    inputs, unusable = expand_inputs(arguments, suffixes)
    if not inputs and not unusable:
        raise InputError("inputs", "none given")
    return [BatchInput(p, s) for p, s in zip(inputs, output_stems(inputs), strict=True)], unusable


def require_writable_folder(folder: Path) -> None:
    """Create ``folder`` and prove it takes a file, before any work starts; InputError otherwise."""
    label = f"output folder '{folder}'"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test."):
            pass
    except OSError as exc:
        raise InputError(label, f"cannot be written ({exc.strerror or exc})") from None


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"in-process (pid {os.getpid()})"


def run_one(detector: Detector, item: BatchInput, output: Path, threads: int | None = None) -> dict:
    """Detect on one input and return its log record; errors become a ``failed`` record.

    Outputs of an earlier run for the same stem are removed first, so a failure never sits beside a
    stale result.
    """
    if threads:
        import torch

        torch.set_num_threads(threads)
    started = time.perf_counter()
    outputs = [output / name for name in detector.output_names(item.stem)]
    record: dict[str, Any] = {"input": str(item.source), "output": str(outputs[0]), "worker": _worker_name()}
    for path in outputs:
        path.unlink(missing_ok=True)
    try:
        extra = detector(item.source, item.stem, output) or {}
        record.update(status="done", **extra)
    except LandmarkError as exc:
        record.update(status="failed", reason=str(exc))
    except Exception as exc:  # noqa: BLE001 (one broken input must not stop the batch)
        record.update(status="failed", reason=f"unexpected error {type(exc).__name__}: {exc}")
    if record["status"] == "failed":
        for path in outputs:
            path.unlink(missing_ok=True)
    record["seconds"] = round(time.perf_counter() - started, 3)
    return record


class InProcess:
    """The default executor: one input after another in this process."""

    name = "in-process"

    def map(self, detector: Detector, items: Sequence[BatchInput], output: Path, threads: int | None):
        for item in items:
            yield item, run_one(detector, item, output, threads)

    def close(self) -> None:
        """Nothing to release."""


@dataclass
class BatchLog:
    """The JSON-lines log, appended as inputs end, and the summary table written at the end."""

    output: Path
    records: list[dict]

    def __post_init__(self) -> None:
        self._stream = open(self.output / LOG_NAME, "w", encoding="utf-8")  # noqa: SIM115

    def add(self, record: dict) -> None:
        self.records.append(record)
        self._stream.write(json.dumps(record) + "\n")
        self._stream.flush()

    def close(self) -> str:
        self._stream.close()
        table = summary_table(self.records)
        write_text_atomic(self.output / SUMMARY_NAME, table + "\n")
        return table


def summary_table(records: Sequence[dict]) -> str:
    """A markdown table: one row per input, then the counts."""
    counts = Counter(r["status"] for r in records)
    rows = ["| input | status | output or reason | seconds | worker |", "|---|---|---|---|---|"]
    for r in records:
        detail = r["output"] if r["status"] == "done" else " ".join(r.get("reason", "").split())
        if r["status"] == "done" and r.get("warnings"):  # written, but to be checked
            detail += " (warning: " + "; ".join(r["warnings"]) + ")"
        rows.append(
            f"| {r['input']} | {r['status']} | {detail} | {r.get('seconds', '')} | {r.get('worker', '')} |"
        )
    totals = ", ".join(f"{counts[s]} {s}" for s in ("done", "failed", "cancelled") if counts[s])
    return "\n".join(rows) + f"\n\n{len(records)} inputs: {totals or 'none'}"


def run_batch(
    detector: Detector,
    items: Sequence[BatchInput],
    output: Path,
    unusable: dict | None = None,
    progress: ProgressCallback | None = None,
    executor: Any = None,
    threads: int | None = None,
    report: Callable[[str], None] | None = None,
) -> int:
    """Run every input, log each, print the summary; the exit code (0 all done, 1 some failed, 130 Ctrl-C)."""
    require_writable_folder(output)
    executor = executor or InProcess()
    log = BatchLog(output, [])
    for argument, reason in (unusable or {}).items():
        log.add({"input": argument, "output": "", "status": "failed", "reason": f"'{argument}': {reason}"})
    finished: set[BatchInput] = set()
    code = EXIT_INTERRUPTED
    try:
        for item, record in executor.map(detector, items, output, threads):
            finished.add(item)
            log.add(record)
            if progress:
                progress(len(finished) / max(len(items), 1), f"{item.stem}: {record['status']}")
        code = EXIT_SOME_FAILED if any(r["status"] != "done" for r in log.records) else EXIT_ALL_DONE
    except KeyboardInterrupt:
        for item in items:
            if item not in finished:
                log.add({"input": str(item.source), "output": "", "status": "cancelled", "reason": "Ctrl-C"})
    finally:
        executor.close()
        table = log.close()
        (report or _stderr)(table + f"\nlog: {output / LOG_NAME}")
    return code


def _stderr(text: str) -> None:
    import sys

    print(text, file=sys.stderr)


def iter_records(output: Path) -> Iterator[dict]:
    """The records of the batch log in ``output`` (for tests and the Slicer summary)."""
    with open(output / LOG_NAME, encoding="utf-8") as stream:
        for line in stream:
            yield json.loads(line)
