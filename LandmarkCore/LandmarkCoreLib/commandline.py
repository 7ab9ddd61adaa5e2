"""What the three console commands share: how a run ends on a user error or an interrupt."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable

from .errors import LandmarkError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # the shell's code for SIGINT; Slicer's Cancel sends SIGINT to the command


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
