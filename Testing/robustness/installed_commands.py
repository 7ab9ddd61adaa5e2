"""The installed commands of this environment, run as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def run(command: str, *args, timeout: int = 300) -> subprocess.CompletedProcess:
    """``command`` with ``args`` (one torch/OpenMP thread), its output decoded as UTF-8."""
    return subprocess.run(
        [BIN / command, *map(str, args)],
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def one_clear_line(result: subprocess.CompletedProcess, *words: str) -> None:
    """Exit 2, no traceback, and the last line of stderr names what is wrong."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert all(word in last for word in words), last
