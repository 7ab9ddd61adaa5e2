"""The Slicer-module tests run against Slicer's own Python layer (see slicer_environment.py)."""

from __future__ import annotations

import pytest
from slicer_environment import install, new_scene

slicer = install()


@pytest.fixture
def scene():
    """A fresh real MRML scene, also installed as slicer.mrmlScene (where Slicer keeps it)."""
    previous = slicer.mrmlScene
    slicer.mrmlScene = new_scene()
    yield slicer.mrmlScene
    slicer.mrmlScene.Clear(1)
    slicer.mrmlScene = previous
