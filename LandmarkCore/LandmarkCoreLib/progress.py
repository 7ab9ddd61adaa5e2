"""Progress reporting and cancellation shared by training and detection loops.

Library code calls ``progress(fraction, message)`` and ``cancel.check()``; the CLI plugs in tqdm,
Slicer's Logic plugs in a callback that feeds the GUI's progress bar, and the GUI's Cancel button
sets the token. Neither side knows about the other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .errors import Cancelled

#: ``progress(fraction in [0, 1], message)``; ``fraction`` may be ``None`` when unknown.
ProgressCallback = Callable[[float | None, str], None]


def no_progress(fraction: float | None, message: str) -> None:
    """A progress callback that ignores everything."""


class CancelToken:
    """Thread-safe flag that a GUI or a signal handler sets and long loops poll."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if cancellation was requested."""
        if self._event.is_set():
            raise Cancelled("cancelled by the user")


def tqdm_progress(description: str) -> ProgressCallback:
    """A progress callback drawing a tqdm bar on stderr (for the command-line tools)."""
    from tqdm.auto import tqdm

    bar = tqdm(total=1000, desc=description, unit="‰", leave=True)

    def report(fraction: float | None, message: str) -> None:
        if fraction is not None:
            bar.n = int(round(max(0.0, min(1.0, fraction)) * 1000))
        bar.set_postfix_str(message, refresh=True)

    return report


def json_lines_progress(stream=None) -> ProgressCallback:
    """A progress callback printing one JSON object per line, for a parent process to parse.

    Slicer runs long jobs as a child process of the CLI and reads these lines to update its GUI.
    """
    import json
    import sys

    out = stream or sys.stdout

    def report(fraction: float | None, message: str) -> None:
        out.write(json.dumps({"progress": fraction, "message": message}) + "\n")
        out.flush()

    return report
