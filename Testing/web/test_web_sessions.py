"""A tab's session process ends --idle-seconds after the tab closed, and the front door then serves new
tabs again (it holds at most MAX_SESSIONS sessions)."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlparse

import pytest

pytestmark = pytest.mark.slow

IDLE_SECONDS = 5
GRACE_SECONDS = 30  # the session's own shutdown (VTK, MRML) on top of the idle time


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_a_closed_tabs_session_ends_after_the_idle_time(page, web_server, tmp_path):
    url = web_server(tmp_path, "--idle-seconds", str(IDLE_SECONDS))
    page.goto(url)
    page.wait_for_selector("#tab-knee", timeout=120_000)  # the app is up and connected
    port = urlparse(page.url).port
    page.wait_for_timeout(2 * IDLE_SECONDS * 1000)
    assert listening(port), "the session ended while its tab was open"
    page.close()
    closed = time.monotonic()
    while listening(port) and time.monotonic() - closed < IDLE_SECONDS + GRACE_SECONDS:
        time.sleep(0.5)
    assert not listening(port), (
        f"session on port {port} still up {time.monotonic() - closed:.0f} s after its tab closed"
    )
    # A new tab gets a new session.
    other = page.context.new_page()
    other.goto(url)
    other.wait_for_selector("#tab-knee", timeout=120_000)
    assert urlparse(other.url).port != port


def test_idle_seconds_out_of_range_is_a_usage_error():
    from LandmarkWebLib.cli import parse_args

    for value in ("0", "-3", "nan", "1e9"):
        with pytest.raises(SystemExit) as exit_info:
            parse_args(["--idle-seconds", value])
        assert exit_info.value.code == 2
