"""The Slicer versions this extension supports, and the message an older Slicer gets at module load."""

from __future__ import annotations

import sys

#: Slicer 5.10 is the first release with Python 3.12; the releases before it shipped Python 3.9, which
#: the module code cannot run on (it needs 3.10, as pyproject.toml says).
MINIMUM_SLICER = (5, 10)
MINIMUM_PYTHON = (3, 10)


def unsupported_reason(slicer_version: str | None, python_version: tuple[int, int]) -> str | None:
    """Why this Slicer cannot run the modules, or None; ``slicer_version`` like "5.8.1" (None: unknown)."""
    wanted = ".".join(map(str, MINIMUM_SLICER))
    if slicer_version:
        try:
            numbers = tuple(int(part) for part in slicer_version.split(".")[:2])
        except ValueError:
            numbers = None
        if numbers is not None and numbers < MINIMUM_SLICER:
            return (
                f"Slicer {slicer_version} is too old: the Landmark Detection modules need "
                f"Slicer {wanted} or later."
            )
    if tuple(python_version[:2]) < MINIMUM_PYTHON:
        found = ".".join(map(str, python_version[:2]))
        return f"Python {found} is too old: the Landmark Detection modules need Slicer {wanted} or later."
    return None


def running_slicer_version() -> str | None:
    """``major.minor.patch`` of the running Slicer application, or None outside it."""
    import slicer

    app = getattr(slicer, "app", None)
    for name in ("majorVersion", "minorVersion", "patchVersion"):
        if not isinstance(getattr(app, name, None), int):
            return None
    return f"{app.majorVersion}.{app.minorVersion}.{app.patchVersion}"


def check_supported() -> str | None:
    """The reason this Slicer is unsupported (logged once as an error), or None."""
    reason = unsupported_reason(running_slicer_version(), sys.version_info[:2])
    if reason:
        import logging

        logging.error(reason)
    return reason
