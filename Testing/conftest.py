"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository's top folder."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The real data sets (../shared/data or $LANDMARK_DATA_ROOT); a missing folder FAILS the test."""
    from LandmarkCoreLib.datasets import default_data_root
    from LandmarkCoreLib.errors import InputError

    try:
        return default_data_root()
    except InputError as exc:
        pytest.fail(f"real data needed by this test is missing: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def knee_detect_command() -> Callable[..., list]:
    """``command(out, *args)``: the installed ``knee-landmarks detect`` on one thread with JSON-lines
    progress, writing to ``out``."""

    def command(out: Path, *args) -> list:
        detect = [Path(sys.executable).parent / "knee-landmarks", "detect", "--threads", "1"]
        return [*detect, "--progress-format", "jsonl", "-o", out, *args]

    return command
