"""Slicer's own Python layer (../shared/slicer-api/<tag>) on top of slicer-core's real MRML.

``install(tag)`` puts the tag's ``Base/Python`` first on ``sys.path``, so that ``slicer``,
``slicer.util``, ``slicer.parameterNodeWrapper``, ``slicer.ScriptedLoadableModule`` and ``SampleData``
are Slicer's code at that tag, and loads slicer-core's MRML classes into ``slicer`` the way Slicer's
``kits`` do. Only what exists solely inside the application is shimmed: the ``qt`` and ``ctk``
modules, the ``slicer.qMRML*``/``slicer.qSlicer*`` widget classes, and ``slicer.app`` (version,
cache path, signal connections). One tag per process: ``slicer`` is one package.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
import types
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SLICER_API = REPO_ROOT.parent / "shared" / "slicer-api"
TAGS = ("v5.10.0", "v5.12.3")
TAG_ENV = "LANDMARK_SLICER_API"
DEFAULT_TAG = TAGS[-1]
MODULE_FOLDERS = ("OneShotLandmarks", "KneeLandmarks", "FaceLandmarks")


class Shim:
    """A Qt/CTK widget or value: accepts any construction, call and attribute."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __call__(self, *args, **kwargs):
        return Shim()

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return Shim()


def _class_factory():
    classes: dict[str, type] = {}

    def get(name: str) -> type:
        if name.startswith("__"):
            raise AttributeError(name)
        return classes.setdefault(name, type(name, (Shim,), {}))

    return get


def _toolkit_module(name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__getattr__ = _class_factory()  # type: ignore[attr-defined]
    return module


class App:
    """``slicer.app``: the application object, which only the Slicer executable creates."""

    def __init__(self, version: tuple[int, int, int]) -> None:
        self.majorVersion, self.minorVersion, self.patchVersion = version
        self.cachePath = tempfile.mkdtemp(prefix="slicer-cache-")
        self.temporaryPath = tempfile.gettempdir()
        self.connections: list[tuple[str, object]] = []

    def connect(self, signal: str, slot) -> None:
        self.connections.append((signal, slot))

    def testingEnabled(self) -> bool:
        return True

    def commandOptions(self):
        return types.SimpleNamespace(noMainWindow=True)

    def processEvents(self, *args) -> None:
        pass

    def moduleManager(self) -> Shim:
        return Shim()

    def translate(self, context: str, text: str) -> str:
        return text  # Qt without a loaded translation


def tag_version(tag: str) -> tuple[int, int, int]:
    major, minor, patch = (int(part) for part in tag.lstrip("v").split("."))
    return major, minor, patch


def install(tag: str | None = None):
    """Import Slicer's Python layer of ``tag`` (default: $LANDMARK_SLICER_API, else the newest)."""
    tag = tag or os.environ.get(TAG_ENV, DEFAULT_TAG)
    base = SLICER_API / tag / "Base" / "Python"
    loaded = sys.modules.get("slicer")
    if loaded is not None:
        if Path(loaded.__file__).resolve().is_relative_to(base.resolve()):
            return loaded
        raise RuntimeError(f"'slicer' was imported from {loaded.__file__} before Slicer's {tag} layer")
    if not base.is_dir():
        raise RuntimeError(f"Slicer's Python layer {base} is missing (see ../shared/slicer-api/README.md)")
    sys.path[:0] = [str(base), str(SLICER_API / tag / "Modules" / "Scripted" / "SampleData")]
    sys.modules.setdefault("qt", _toolkit_module("qt"))
    sys.modules.setdefault("ctk", _toolkit_module("ctk"))
    slicer = importlib.import_module("slicer")
    mrml = importlib.import_module("slicer_core")
    for name in dir(mrml):
        if not name.startswith("_"):
            setattr(slicer, name, getattr(mrml, name))
    widget_classes = _class_factory()

    def widget_class(name: str) -> type:
        if name.startswith(("qMRML", "qSlicer")):
            return widget_classes(name)
        raise AttributeError(f"module 'slicer' has no attribute '{name}'")

    slicer.__getattr__ = widget_class  # type: ignore[attr-defined]
    slicer.app = App(tag_version(tag))
    slicer.mrmlScene = new_scene()
    for module in ("slicer.util", "slicer.parameterNodeWrapper", "slicer.ScriptedLoadableModule"):
        importlib.import_module(module)
    for folder in MODULE_FOLDERS:
        if str(REPO_ROOT / folder) not in sys.path:
            sys.path.insert(0, str(REPO_ROOT / folder))
    return slicer


def new_scene():
    """A real scene with the application and markups logics (as the application sets up)."""
    from LandmarkSlicerLib.mrml_bridge import new_scene_with_logic

    return new_scene_with_logic()
