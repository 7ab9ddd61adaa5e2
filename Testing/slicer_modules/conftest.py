"""Run the Slicer module files outside the Slicer application.

MRML is real: the ``slicer-core`` wheel gives ``vtkMRMLScene``, volume/markups/segmentation/table
nodes and their storage. What cannot exist here is the GUI toolkit, so ONLY these are stood in for,
and only when missing: ``qt``, ``ctk``, ``slicer.ScriptedLoadableModule`` and
``slicer.parameterNodeWrapper`` (typed fields kept in a real vtkMRMLScriptedModuleNode). Widgets
are never instantiated in these tests; the static checks read the .ui files and sources instead.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import json
import pathlib
import sys
import types
import typing
import unittest

import pytest
import slicer
from module_test_helpers import MODULES, REPO_ROOT


class _Anything:
    """Stands in for any Qt/CTK class or constant: callable, subclassable, attribute-rich."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __call__(self, *args, **kwargs):
        return _Anything()

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Anything()


def _toolkit_module(name: str) -> types.ModuleType:
    module = types.ModuleType(name)

    def attribute(attribute_name: str):
        if attribute_name.startswith("__"):  # module dunders (__file__, __path__) stay absent
            raise AttributeError(attribute_name)
        return type(attribute_name, (_Anything,), {})

    module.__getattr__ = attribute  # type: ignore[attr-defined]
    return module


# -- slicer.ScriptedLoadableModule ------------------------------------------------------------
class ScriptedLoadableModule:
    def __init__(self, parent) -> None:
        self.parent = parent


class ScriptedLoadableModuleWidget:
    def __init__(self, parent=None) -> None:
        self.parent = parent


class ScriptedLoadableModuleLogic:
    """As in Slicer: one vtkMRMLScriptedModuleNode per module, a singleton in slicer.mrmlScene."""

    def __init__(self, parent=None) -> None:
        self.moduleName = type(self).__name__.removesuffix("Logic")

    def getParameterNode(self):
        scene = slicer.mrmlScene
        node = scene.GetSingletonNode(self.moduleName, "vtkMRMLScriptedModuleNode")
        if node is None:
            node = scene.CreateNodeByClass("vtkMRMLScriptedModuleNode")
            node.UnRegister(None)
            node.SetSingletonTag(self.moduleName)
            node.SetName(scene.GenerateUniqueName(self.moduleName))
            node.SetAttribute("ModuleName", self.moduleName)
            node = scene.AddNode(node)
        return node


class ScriptedLoadableModuleTest(unittest.TestCase):
    def delayDisplay(self, message, msec=0) -> None:
        print(message)


# -- slicer.parameterNodeWrapper --------------------------------------------------------------
@dataclasses.dataclass
class WithinRange:
    minimum: float
    maximum: float


@dataclasses.dataclass
class Choice:
    choices: list


def _split(annotation):
    if typing.get_origin(annotation) is typing.Annotated:
        base, *extras = typing.get_args(annotation)
        return base, extras
    return annotation, []


def _is_node_type(base) -> bool:
    """A node class, or a Union of node classes (``vtkMRMLScalarVolumeNode | vtkMRMLVectorVolumeNode``)."""
    members = typing.get_args(base) if typing.get_origin(base) in (typing.Union, types.UnionType) else (base,)
    return all(isinstance(m, type) and m.__name__.startswith("vtkMRML") for m in members)


class _Field:
    def __init__(self, name: str, annotation, default) -> None:
        self.name = name
        self.base, self.extras = _split(annotation)
        self.default = default

    def check(self, value) -> None:
        for extra in self.extras:
            if isinstance(extra, WithinRange) and not extra.minimum <= value <= extra.maximum:
                raise ValueError(f"{self.name}={value} outside [{extra.minimum}, {extra.maximum}]")
            if isinstance(extra, Choice) and value not in extra.choices:
                raise ValueError(f"{self.name}={value!r} not one of {extra.choices}")

    def write(self, node, value) -> None:
        if _is_node_type(self.base):
            node.SetNodeReferenceID(self.name, value.GetID() if value is not None else None)
            return
        self.check(value)
        if isinstance(value, enum.Enum):
            value = value.name
        node.SetParameter(self.name, json.dumps(str(value) if isinstance(value, pathlib.PurePath) else value))

    def read(self, node):
        if _is_node_type(self.base):
            return node.GetNodeReference(self.name)
        value = json.loads(node.GetParameter(self.name))
        if isinstance(self.base, type) and issubclass(self.base, enum.Enum):
            return self.base[value]
        if self.base in (pathlib.Path, pathlib.PurePath):
            return pathlib.Path(value)
        return self.base(value)


def parameterNodeWrapper(cls):
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {name: _Field(name, hint, getattr(cls, name, None)) for name, hint in hints.items()}

    def initialize(self, parameterNode) -> None:
        self.parameterNode = parameterNode
        for field in fields.values():
            if not _is_node_type(field.base) and not parameterNode.GetParameter(field.name):
                field.write(parameterNode, field.default)

    namespace = {"__init__": initialize, "allParameters": fields}
    for name, field in fields.items():
        namespace[name] = property(
            lambda self, f=field: f.read(self.parameterNode),
            lambda self, value, f=field: f.write(self.parameterNode, value),
        )
    return type(cls.__name__, (), namespace)


def _install_stand_ins() -> None:
    for name in ("qt", "ctk"):
        try:
            importlib.import_module(name)
        except ImportError:
            sys.modules[name] = _toolkit_module(name)
    try:
        importlib.import_module("slicer.ScriptedLoadableModule")
    except ImportError:
        module = types.ModuleType("slicer.ScriptedLoadableModule")
        for item in (
            ScriptedLoadableModule,
            ScriptedLoadableModuleWidget,
            ScriptedLoadableModuleLogic,
            ScriptedLoadableModuleTest,
        ):
            setattr(module, item.__name__, item)
        sys.modules[module.__name__] = module
        slicer.ScriptedLoadableModule = module
    try:
        importlib.import_module("slicer.parameterNodeWrapper")
    except ImportError:
        module = types.ModuleType("slicer.parameterNodeWrapper")
        module.parameterNodeWrapper = parameterNodeWrapper
        module.WithinRange = WithinRange
        module.Choice = Choice
        sys.modules[module.__name__] = module
        slicer.parameterNodeWrapper = module
    if not hasattr(slicer, "app"):
        slicer.app = _Anything()  # the Module class connects to startupCompleted() on it
    if not hasattr(slicer, "mrmlScene"):
        slicer.mrmlScene = slicer.vtkMRMLScene()
    for module_name in MODULES:
        folder = str(REPO_ROOT / module_name)
        if folder not in sys.path:
            sys.path.insert(0, folder)


_install_stand_ins()


@pytest.fixture
def scene():
    """A fresh real MRML scene, also installed as slicer.mrmlScene (where Slicer keeps it)."""
    from LandmarkCoreLib.mrml_bridge import new_scene_with_logic

    previous = slicer.mrmlScene
    slicer.mrmlScene = new_scene_with_logic()
    yield slicer.mrmlScene
    slicer.mrmlScene.Clear(1)
    slicer.mrmlScene = previous
