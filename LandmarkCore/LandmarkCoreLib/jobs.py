"""Run a module's command-line tool as a child process, without Qt and without blocking.

Slicer's GUI must never freeze during training or batch detection, and a crash in torch must
never take the application down. So the Widget starts the CLI (``python -m <Lib>.cli ...
--progress-format jsonl``) through :class:`Job`, polls :meth:`Job.poll` from a ``qt.QTimer``
and shows the progress events; Cancel calls :meth:`Job.cancel`, which interrupts the CLI the
way Ctrl+C would, so the CLI stops at its next cancellation check and keeps its last checkpoint.

Inside Slicer the command is ``PythonSlicer``, a launcher that starts ``python-real`` as its child,
shares its pipes and forwards no signal. So a job runs in its own session (POSIX) or process group
(Windows) and Cancel signals the whole group: SIGINT on POSIX, CTRL_BREAK_EVENT on Windows.

A reader thread per pipe moves the child's output into a queue, so the pipes never fill up and
the caller never waits on I/O. Lines that are JSON objects with a ``progress`` or ``message`` key
become :class:`ProgressEvent`; other stdout lines are kept as log; stderr is kept so that a
failed run raises :class:`JobError` with the tool's own last words.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import Cancelled, LandmarkError

#: How many stderr lines are kept for the error message of a failed job.
STDERR_TAIL_LINES = 40


class JobError(LandmarkError):
    """The child process ended with a non-zero exit status; the message holds its stderr tail."""

    def __init__(self, command: str, returncode: int, stderr_tail: str) -> None:
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        detail = _last_error_line(stderr_tail) or f"exit status {returncode}"
        super().__init__(f"{command} failed: {detail}")


@dataclass
class ProgressEvent:
    """One progress line of the child: ``fraction`` in [0, 1] or ``None`` when unknown."""

    fraction: float | None
    message: str


@dataclass
class JobResult:
    """What a finished job left behind."""

    returncode: int
    log: list[str] = field(default_factory=list)
    stderr: str = ""


def _last_error_line(stderr: str) -> str:
    """The most telling part of a stderr text: the last line naming an error, else the last 3 lines."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if "error" in line.lower():
            return line
    return " | ".join(lines[-3:])


def _parse_progress(line: str) -> ProgressEvent | None:
    """A :class:`ProgressEvent` if ``line`` is one of ``json_lines_progress``'s lines, else None."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if not isinstance(record, dict) or not ({"progress", "message"} & record.keys()):
        return None
    fraction = record.get("progress")
    fraction = None if fraction is None else max(0.0, min(1.0, float(fraction)))
    return ProgressEvent(fraction, str(record.get("message", "")))


def package_python_path(*packages: object) -> list[str]:
    """Folders that must be on the child's PYTHONPATH so that it imports the same ``packages``.

    Inside Slicer the Lib packages live in the extension's scripted-modules folder, which the
    ``PythonSlicer`` child interpreter does not search by itself.
    """
    folders: list[str] = []
    for package in packages:
        folder = str(Path(package.__file__).resolve().parent.parent)  # type: ignore[attr-defined]
        if folder not in folders:
            folders.append(folder)
    return folders


def cli_command(
    cli_module: str, subcommand: str, arguments: Sequence[str], python: str | None = None
) -> list[str]:
    """``python -m <cli_module> <subcommand> --progress-format jsonl <arguments...>``."""
    return [
        python or sys.executable,
        "-m",
        cli_module,
        subcommand,
        "--progress-format",
        "jsonl",
        *map(str, arguments),
    ]


class Job:
    """A child process whose progress, log and outcome are read without blocking the caller."""

    def __init__(
        self,
        command: Sequence[str],
        python_path: Iterable[str] = (),
        cwd: str | os.PathLike | None = None,
        name: str | None = None,
        success_codes: Sequence[int] = (0,),
    ) -> None:
        """``success_codes``: exit statuses that are not failures (a batch: 1 = 'some inputs failed')."""
        self.command = [str(c) for c in command]
        self._success_codes = tuple(success_codes)
        self.name = name or " ".join(self.command[1:4])
        self._python_path = list(python_path)
        self._cwd = cwd
        self._events: queue.Queue[ProgressEvent] = queue.Queue()
        self._log: list[str] = []
        self._stderr: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self._process: subprocess.Popen | None = None
        self._readers: list[threading.Thread] = []
        self._cancel_requested = False

    # -- starting -------------------------------------------------------------------------
    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONIOENCODING"] = "utf-8"
        if self._python_path:
            existing = [env["PYTHONPATH"]] if env.get("PYTHONPATH") else []
            env["PYTHONPATH"] = os.pathsep.join([*self._python_path, *existing])
        return env

    def start(self) -> Job:
        """Start the child process and its reader threads; returns ``self``."""
        if self._process is not None:
            raise RuntimeError("job already started")
        windows = sys.platform == "win32"
        self._process = subprocess.Popen(
            self.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=self._environment(),
            cwd=self._cwd,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            creationflags=subprocess.CREATE_NEW_PROCESS_GROUP if windows else 0,
            start_new_session=not windows,  # its own process group: Cancel reaches the launcher's child
        )
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        return self

    def _read_stdout(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            event = _parse_progress(line)
            if event is not None:
                self._events.put(event)
            elif line.strip():
                self._log.append(line.rstrip("\n"))

    def _read_stderr(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        for line in self._process.stderr:
            if line.strip():
                self._stderr.append(line.rstrip("\n"))

    # -- watching -------------------------------------------------------------------------
    def poll(self) -> list[ProgressEvent]:
        """All progress events that arrived since the last call (never blocks)."""
        events = []
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                return events

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def finished(self) -> bool:
        """True once the process ended and all its output has been read."""
        if self._process is None or self._process.poll() is None:
            return False
        return not any(reader.is_alive() for reader in self._readers)

    @property
    def cancel_requested(self) -> bool:
        return self._cancel_requested

    # -- stopping -------------------------------------------------------------------------
    def cancel(self, grace_seconds: float = 15.0) -> None:
        """Interrupt the job's process group like Ctrl+C; terminate it if not stopped after the grace time.

        The CLIs turn the interrupt into their CancelToken, so training stops between batches and
        keeps its last checkpoint. Returns at once; :meth:`result` then raises ``Cancelled`` (unless
        the job completed before the interrupt arrived).
        """
        self._cancel_requested = True
        if not self.running:
            return
        interrupt = signal.CTRL_BREAK_EVENT if sys.platform == "win32" else signal.SIGINT
        if self._signal_group(interrupt):
            threading.Thread(target=self._terminate_after, args=(grace_seconds,), daemon=True).start()

    def _signal_group(self, signal_number: int) -> bool:
        """Send ``signal_number`` to the job's process group; False when it is already gone."""
        assert self._process is not None
        try:
            if sys.platform == "win32":
                self._process.send_signal(signal_number)  # CTRL_BREAK_EVENT reaches the whole group
            else:
                os.killpg(self._process.pid, signal_number)
        except (OSError, ProcessLookupError):
            return False
        return True

    def _terminate_after(self, grace_seconds: float) -> None:
        """Terminate, then kill, the job's process group if it has not stopped in time."""
        if self._ended_by(time.monotonic() + grace_seconds):
            return
        self._signal_group(signal.CTRL_BREAK_EVENT if sys.platform == "win32" else signal.SIGTERM)
        if self._ended_by(time.monotonic() + 5.0):
            return
        if sys.platform == "win32":
            subprocess.run(["taskkill", "/F", "/T", "/PID", str(self._process.pid)], capture_output=True)
        else:
            self._signal_group(signal.SIGKILL)

    def _ended_by(self, deadline: float) -> bool:
        """Whether the process exited and its pipes closed (every process sharing them is gone) in time."""
        assert self._process is not None
        try:
            self._process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return False
        for reader in self._readers:
            reader.join(max(0.0, deadline - time.monotonic()))
        return not any(reader.is_alive() for reader in self._readers)

    def wait(self, timeout: float | None = None) -> JobResult:
        """Block until the job ended (for scripts and tests; the GUI polls :attr:`finished`)."""
        if self._process is None:
            raise RuntimeError("job not started")
        deadline = None if timeout is None else time.monotonic() + timeout
        self._process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return self.result()

    def result(self) -> JobResult:
        """The outcome of a finished job; raises :class:`Cancelled` or :class:`JobError`."""
        if not self.finished:
            raise RuntimeError("job has not finished")
        assert self._process is not None
        returncode = self._process.returncode
        stderr = "\n".join(self._stderr)
        if self._cancel_requested and returncode not in self._success_codes:
            raise Cancelled(f"{self.name}: cancelled by the user; saved checkpoints were kept")
        if returncode not in self._success_codes:
            raise JobError(self.name, returncode, stderr)
        return JobResult(returncode=returncode, log=list(self._log), stderr=stderr)
