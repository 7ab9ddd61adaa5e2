"""The modules on Slicer's own Python layer of every supported release (one child pytest per tag)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from module_test_helpers import REPO_ROOT
from slicer_environment import TAG_ENV, TAGS

CHECKS = REPO_ROOT / "Testing" / "slicer_modules" / "real_slicer_checks.py"


@pytest.mark.parametrize("tag", TAGS)
def test_modules_on_slicers_own_python_layer(tag):
    env = {**os.environ, TAG_ENV: tag}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", str(CHECKS)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    summary = run.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ passed in [\d.]+s", summary), summary
    print(f"Slicer {tag}: {summary}")
