"""Steps the browser tests share."""

from __future__ import annotations

import os
from pathlib import Path

#: Set to a folder (e.g. docs/web) to keep each page's screenshot there.
SCREENSHOTS = os.environ.get("LANDMARK_WEB_SCREENSHOTS")


def screenshot(page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"))


def choose(page, chooser: str, name: str) -> None:
    """Pick ``name`` in a data-folder chooser (an autocomplete): open it, type, click the option."""
    page.click(f"#{chooser}")
    page.keyboard.type(name)
    page.get_by_role("option", name=name).click()


def downloaded_landmarks(page, button: str, path: Path, timeout_ms: int):
    """Click ``#button``, save the file the page sends to ``path`` and read it as landmarks."""
    from LandmarkCoreLib.landmarks import read_landmarks

    with page.expect_download(timeout=timeout_ms) as download:
        page.click(f"#{button}")
    download.value.save_as(path)
    return read_landmarks(path, "downloaded landmarks")
