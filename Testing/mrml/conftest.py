"""The MRML bridge tests share the Slicer-module tests' environment: Slicer's Python layer on slicer-core."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "slicer_modules"))

from slicer_environment import install  # noqa: E402

install()
