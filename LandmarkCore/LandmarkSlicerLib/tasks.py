"""A module's CLI run as a background child process, whose output files become scene nodes.

Qt-free: the Widget's :class:`~LandmarkSlicerLib.gui.TaskMonitor` polls a task from a timer, a script
or test calls :meth:`BackgroundTask.wait`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from LandmarkCoreLib import jobs
from LandmarkCoreLib.batch import EXIT_ALL_DONE, EXIT_SOME_FAILED, LOG_NAME, iter_records
from LandmarkCoreLib.errors import InputError, LandmarkError


def python_executable() -> str:
    """``PythonSlicer`` inside Slicer (the application's own environment), else this interpreter."""
    return shutil.which("PythonSlicer") or sys.executable


def work_folder(prefix: str) -> tempfile.TemporaryDirectory:
    """A private temporary folder for the files a CLI job reads and writes."""
    return tempfile.TemporaryDirectory(prefix=f"{prefix}-")


class BackgroundTask:
    """A CLI child process plus what turns its output files into scene nodes once it ended.

    ``finish`` runs after an exit status in the job's success codes, so a failed or cancelled job
    leaves the scene as it was. The temporary ``folder`` (if any) is removed when the task is collected.
    """

    def __init__(
        self,
        job: jobs.Job,
        finish: Callable[[jobs.JobResult], Any],
        folder: tempfile.TemporaryDirectory | None = None,
    ) -> None:
        self.job = job
        self._finish = finish
        self._folder = folder

    @property
    def finished(self) -> bool:
        return self.job.finished

    def poll(self) -> list[jobs.ProgressEvent]:
        return self.job.poll()

    def cancel(self) -> None:
        self.job.cancel()

    def result(self) -> Any:
        """``finish``'s value; raises the job's ``Cancelled`` or ``JobError``. Cleans up either way."""
        try:
            return self._finish(self.job.result())
        finally:
            if self._folder is not None:
                self._folder.cleanup()
                self._folder = None

    def wait(self, timeout: float | None = None) -> Any:
        """Block until done (Python console, tests) and return :meth:`result`."""
        with contextlib.suppress(LandmarkError):  # result() raises it again after cleaning up
            self.job.wait(timeout)
        return self.result()


def start_cli_task(
    cli_module: str,
    subcommand: str,
    arguments: Sequence[object],
    packages: Sequence[object],
    finish: Callable[[jobs.JobResult], Any],
    folder: tempfile.TemporaryDirectory | None = None,
    success_codes: Sequence[int] = (0,),
) -> BackgroundTask:
    """Start ``python -m cli_module subcommand --progress-format jsonl arguments`` in the background.

    ``packages`` are the imported packages the child needs on its path (the Lib and LandmarkCoreLib).
    """
    command = jobs.cli_command(cli_module, subcommand, [str(a) for a in arguments], python_executable())
    job = jobs.Job(
        command,
        python_path=jobs.package_python_path(*packages),
        name=f"{cli_module.split('.')[0]} {subcommand}",
        success_codes=success_codes,
    )
    logging.info("Starting: %s", " ".join(command))
    return BackgroundTask(job.start(), finish, folder)


#: The ``{import name: pip name}`` a batch on worker processes needs (the ``--workers`` executor).
DASK_PACKAGES = {"distributed": "dask[distributed]"}
#: Most local worker processes the modules offer (a batch runs ``--workers N`` when N > 0).
MAX_WORKERS = 64


def executor_arguments(workers: int) -> list[str]:
    """The ``detect`` flags that run a batch on a local Dask cluster of ``workers`` processes;
    none for 0 (the CLI's default: every input in its own process, one after another)."""
    if not 0 <= int(workers) <= MAX_WORKERS:
        raise InputError("batch workers", f"{workers} is not in [0, {MAX_WORKERS}]")
    return ["--workers", str(int(workers))] if workers else []


#: Exit statuses of a batch CLI that ran every input (1: some failed); the summary tells which.
BATCH_EXIT_CODES = (EXIT_ALL_DONE, EXIT_SOME_FAILED)


@dataclass
class BatchSummary:
    """What a batch left, read from its batch log: the landmark files written, the inputs written with
    a warning to check (``{input name: warnings}``) and those that got none (``{input name: reason}``)."""

    output_folder: Path
    written: list[Path] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    warnings: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        total = len(self.written) + len(self.failed)
        lines = [f"{len(self.written)} of {total} inputs: landmarks written to {self.output_folder}."]
        for heading, notes in (("Written, to be checked:", self.warnings), ("Failed:", self.failed)):
            if notes:
                lines += [heading, *(f"- {name}: {note}" for name, note in notes.items())]
        return "\n".join(lines)


def start_batch_task(
    cli_module: str,
    arguments: Sequence[object],
    output_folder: Path,
    workers: int,
    packages: Sequence[object],
) -> BackgroundTask:
    """Start ``cli_module detect`` (``arguments`` name the model and the inputs) with ``workers`` into
    ``output_folder``; the task's result is the :class:`BatchSummary` of the batch log it writes."""
    started = time.time()

    def finish(result: jobs.JobResult) -> BatchSummary:
        return batch_summary(output_folder, result, started)

    arguments = [*executor_arguments(workers), "-o", output_folder, *arguments]
    return start_cli_task(cli_module, "detect", arguments, packages, finish, success_codes=BATCH_EXIT_CODES)


def batch_summary(output_folder: Path, result: jobs.JobResult, started: float) -> BatchSummary:
    """The summary of a finished batch from the ``batch_log.jsonl`` it wrote into ``output_folder``.

    A CLI that wrote no log since ``started`` (``time.time()``; an older log is another batch's)
    ended before running any input: its JobError is raised.
    """
    output_folder = Path(output_folder)
    log = output_folder / LOG_NAME
    if not log.is_file() or log.stat().st_mtime < started - 1.0:
        raise jobs.JobError("batch detection", result.returncode, result.stderr)
    records = list(iter_records(output_folder))
    summary = BatchSummary(output_folder)
    for name, record in sorted(zip(input_names(records), records, strict=True), key=lambda pair: pair[0]):
        if record["status"] == "done":
            summary.written.append(output_folder / Path(record["output"]).name)
            if record.get("warnings"):
                summary.warnings[name] = "; ".join(record["warnings"])
        else:
            summary.failed[name] = record.get("reason") or record["status"]
    return summary


def input_names(records: Sequence[dict]) -> list[str]:
    """Each record's input as a path relative to the folder that holds them all (the file name when
    they share one folder), so that ``a/skull.nii.gz`` and ``b/skull.nii.gz`` stay apart."""
    paths = [Path(os.path.abspath(r["input"])) for r in records]
    if not paths:
        return []
    common = Path(os.path.commonpath([p.parent for p in paths]))
    return [p.relative_to(common).as_posix() for p in paths]
