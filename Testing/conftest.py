"""Fixtures shared by the whole test suite."""

from __future__ import annotations

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
