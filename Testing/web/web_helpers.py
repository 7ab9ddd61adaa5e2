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
