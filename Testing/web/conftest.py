"""The real web server (landmark-detection-web) on a free loopback port, and Debian's chromium for
pytest-playwright (Playwright's own browser download cannot run here)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("LANDMARK_WEB_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no chromium at {CHROMIUM}: run scripts/install_web.sh", pytrace=False)
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": ["--no-sandbox"]}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1400, "height": 860}, "accept_downloads": True}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(data_folder: Path, tmp_path: Path, *options: str):
    """``landmark-detection-web`` (with ``options``) as a child process; (process, log, front-door URL)
    once it listens."""
    port = _free_port()
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 (closed by the fixture)
    command = [
        sys.executable,
        "-m",
        "LandmarkWebLib.cli",
        "--port",
        str(port),
        "--data-folder",
        str(data_folder),
        *options,
    ]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(200):
        if process.poll() is not None:
            pytest.fail(
                f"server ended with {process.returncode}: {(tmp_path / 'server.log').read_text()[-2000:]}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process, log, f"http://127.0.0.1:{port}/"
        except OSError:
            time.sleep(0.2)
    pytest.fail("server did not listen")


@pytest.fixture
def web_server(tmp_path):
    """A factory: ``web_server(data_folder, *options)`` -> front-door URL; the server is stopped
    afterwards."""
    started = []

    def start(data_folder: Path, *options: str) -> str:
        process, log, url = start_server(data_folder, tmp_path, *options)
        started.append((process, log))
        return url

    yield start
    for process, log in started:
        process.terminate()
        process.wait(timeout=20)
        log.close()
