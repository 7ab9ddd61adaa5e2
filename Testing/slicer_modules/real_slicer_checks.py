"""The modules against Slicer's own Python layer of one tag ($LANDMARK_SLICER_API, see conftest.py).

Not collected on its own (one ``slicer`` per process): ``test_slicer_versions.py`` runs this file in a
child pytest per supported tag. For each module: the parameter node is created on a real scene by
Slicer's parameterNodeWrapper and every field round-trips; the sample data registers through Slicer's
SampleData module; the module file is loaded and its classes constructed as Slicer's factory does.
"""

from __future__ import annotations

import importlib.util
import pathlib
import types
import typing

import pytest
import slicer
from module_test_helpers import MODULES, REPO_ROOT
from slicer.parameterNodeWrapper import Choice, WithinRange
from slicer.parameterNodeWrapper.util import splitAnnotations


def _node_classes(annotation) -> list[type]:
    """The MRML node classes of a field type (a node class, or a Union/Optional of them)."""
    base, _ = splitAnnotations(annotation)
    members = typing.get_args(base) if typing.get_origin(base) is typing.Union else (base,)
    return [m for m in members if isinstance(m, type) and issubclass(m, slicer.vtkMRMLNode)]


def _other_value(info, current, scene):
    """A valid value of the field that differs from ``current``."""
    nodes = _node_classes(info.unalteredType)
    if nodes:
        return scene.AddNewNodeByClass(nodes[-1].__name__, f"{info.basename} node")
    base, annotations = splitAnnotations(info.unalteredType)
    base = typing.get_args(base)[0] if typing.get_origin(base) is typing.Union else base
    for annotation in annotations:
        if isinstance(annotation, Choice):
            return next(choice for choice in annotation.choices if choice != current)
        if isinstance(annotation, WithinRange):
            middle = base((annotation.minimum + annotation.maximum) / 2)
            return middle if middle != current else base(annotation.minimum)
    if base is bool:
        return not current
    if base in (int, float):
        return base(current or 0) + 1
    if base is str:
        return f"{current}x"
    if base in (pathlib.Path, pathlib.PurePath):
        return pathlib.Path("/tmp/landmarks/model.pt")
    if typing.get_origin(base) is list:
        return [*current, current[-1]]
    raise AssertionError(f"{info.basename}: no test value for {info.unalteredType}")


def _logic(module: str, scene):
    logic_module = importlib.import_module(f"{module}Slicer.logic")
    return getattr(logic_module, f"{module}Logic")(scene)


@pytest.mark.parametrize("module", MODULES)
def test_parameter_node_is_created_and_every_field_round_trips(module, scene):
    parameters = _logic(module, scene).getParameterNode()
    assert parameters.parameterNode.GetScene() is scene
    assert parameters.parameterNode.GetAttribute("ModuleName") == module
    values = {}
    for name, info in parameters.allParameters.items():
        values[name] = _other_value(info, getattr(parameters, name), scene)
        setattr(parameters, name, values[name])
    reread = type(parameters)(parameters.parameterNode)  # a new wrapper reads what the MRML node holds
    for name, value in values.items():
        assert getattr(reread, name) == value, name
    for name, info in parameters.allParameters.items():
        if _node_classes(info.unalteredType):
            setattr(parameters, name, None)
            assert getattr(reread, name) is None, name


def test_oneshot_training_fields_are_the_config_declaration(scene):
    """Each TrainingConfig setting is a parameter-node field with its default, and comes back as it."""
    from LandmarkCoreLib.settings import setting_specs
    from LandmarkSlicerLib.parameters import DERIVED, parameter_name
    from OneShotLandmarksLib.config import TrainingConfig
    from OneShotLandmarksSlicer.logic import TrainingInputs

    parameters = _logic("OneShotLandmarks", scene).getParameterNode()
    for spec in setting_specs(TrainingConfig):
        stored = getattr(parameters, parameter_name(spec.name))
        assert stored == (DERIVED if spec.default is None else spec.default), spec.name
    assert TrainingInputs.fromParameterNode(parameters).settings == TrainingConfig()
    parameters.marginMm, parameters.learningRate, parameters.batchSize = 2.5, 3e-4, 8
    settings = TrainingInputs.fromParameterNode(parameters).settings
    assert (settings.margin_mm, settings.learning_rate, settings.batch_size) == (2.5, 3e-4, 8)
    derivable = [s for s in setting_specs(TrainingConfig) if s.optional and s.type is float]
    for spec in derivable:  # a length left to be derived from the SOI
        setattr(parameters, parameter_name(spec.name), DERIVED)
        assert getattr(TrainingInputs.fromParameterNode(parameters).settings, spec.name) is None


def _load_module_file(module: str):
    """The module file loaded the way Slicer's scripted-module factory loads it (by file, by name)."""
    path = REPO_ROOT / module / f"{module}.py"
    spec = importlib.util.spec_from_file_location(module, path)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded, path


@pytest.mark.parametrize("module", MODULES)
def test_module_is_constructed_as_slicers_factory_does(module):
    from slicer.ScriptedLoadableModule import (
        ScriptedLoadableModule,
        ScriptedLoadableModuleTest,
        ScriptedLoadableModuleWidget,
    )

    loaded, path = _load_module_file(module)
    parent = types.SimpleNamespace(path=str(path))
    instance = getattr(loaded, module)(parent)
    assert isinstance(instance, ScriptedLoadableModule)
    assert parent.title and parent.categories == ["Landmark Detection"] and "Method:" in parent.helpText
    assert slicer.selfTests[module] == instance.runTest
    widget_class = getattr(loaded, f"{module}Widget")
    assert issubclass(widget_class, ScriptedLoadableModuleWidget)
    assert issubclass(getattr(loaded, f"{module}Test"), ScriptedLoadableModuleTest)
    widget = widget_class(slicer.qMRMLWidget())  # with a parent: setup() waits for the panel to open
    assert widget.moduleName == module and widget.logic is None


@pytest.mark.parametrize("module", ["OneShotLandmarks", "FaceLandmarks"])
def test_sample_data_registers_through_slicers_sample_data_module(module):
    import SampleData

    loaded, path = _load_module_file(module)
    slicer.app.connections.clear()
    getattr(loaded, module)(types.SimpleNamespace(path=str(path)))
    ((signal, register),) = slicer.app.connections
    assert signal == "startupCompleted()"
    register()
    sample_data = importlib.import_module(f"{module}Slicer.sample_data")
    names = (
        [*(s[0] for s in sample_data.MOUSE_SAMPLES), sample_data.HUMAN_SAMPLE]
        if module == "OneShotLandmarks"
        else [sample_data.SAMPLE_NAME]
    )
    registered = {
        s.sampleName for s in SampleData.SampleDataLogic.sampleDataSourcesByCategory("Landmark Detection")
    }
    assert set(names) <= registered
    for name in names:
        source = SampleData.SampleDataLogic().sourceForSampleName(name)
        hosts = ("https://raw.githubusercontent.com/", "https://files.pythonhosted.org/packages/")
        assert all(uri.startswith(hosts) for uri in source.uris)
        assert all(checksum.startswith("SHA256:") and len(checksum) == 71 for checksum in source.checksums)
        assert pathlib.Path(source.thumbnailFileName).is_file()
    if module == "OneShotLandmarks":  # the human template: its button takes two files out of a wheel
        human = SampleData.SampleDataLogic().sourceForSampleName(sample_data.HUMAN_SAMPLE)
        assert human.customDownloader is not None and human.fileNames == [sample_data.AUTOAFIDS_CACHE_NAME]
    if module == "FaceLandmarks":  # a numbered frame among its siblings loads as one 2D image
        assert source.loadFileProperties == {"singleFile": True}


@pytest.mark.parametrize("version", [(5, 8, 1), (5, 6, 2)])
def test_an_older_slicer_gets_a_message_not_a_traceback(version, monkeypatch):
    app = slicer.app
    monkeypatch.setattr(app, "majorVersion", version[0])
    monkeypatch.setattr(app, "minorVersion", version[1])
    monkeypatch.setattr(app, "patchVersion", version[2])
    for module in MODULES:
        loaded, path = _load_module_file(module)
        parent = types.SimpleNamespace(path=str(path))
        getattr(loaded, module)(parent)
        expected = f"Slicer {'.'.join(map(str, version))} is too old"
        assert parent.helpText.startswith(expected) and "5.10 or later" in parent.helpText
        assert not hasattr(loaded, f"{module}Widget")


class FakeWidget:
    """A .ui widget: the properties the Widgets set, the .ui's text properties, and signals."""

    def __init__(self, element=None) -> None:
        self.enabled, self.text, self.toolTip = True, "", ""
        self._dynamic = {}
        for prop in element.findall("property") if element is not None else ():
            if prop.find("string") is None:
                continue
            if prop.get("stdset") == "0":
                self._dynamic[prop.get("name")] = prop.findtext("string")
            else:
                setattr(self, prop.get("name"), prop.findtext("string"))

    def property(self, name):
        return self._dynamic.get(name)

    def connect(self, signal, slot) -> None:
        pass

    def blockSignals(self, block) -> bool:
        return False

    def setCurrentNode(self, node) -> None:
        pass

    def setCurrentSegmentID(self, segment) -> None:
        pass


def _fake_ui(module: str) -> types.SimpleNamespace:
    """The module's .ui widgets by name, each a FakeWidget with the .ui's text properties."""
    import xml.etree.ElementTree as ET

    ui_file = REPO_ROOT / module / "Resources" / "UI" / f"{module}.ui"
    widgets = ET.parse(ui_file).getroot().iter("widget")
    return types.SimpleNamespace(**{w.get("name"): FakeWidget(w) for w in widgets})


@pytest.mark.parametrize("module", MODULES)
def test_the_buttons_follow_the_parameter_node(module, scene):
    """The Widget's _updateGui on the real parameter node: Detect only once an input is there."""
    loaded, _ = _load_module_file(module)
    widget = getattr(loaded, f"{module}Widget")(slicer.qMRMLWidget())
    widget.ui = _fake_ui(module)
    widget.logic = widget.logicClass(scene)
    widget._parameterNode = widget.logic.getParameterNode()
    widget._updateGui()
    assert widget.ui.detectButton.enabled is False and widget.ui.evaluateButton.enabled is False
    volume_field = "targetVolume" if module == "OneShotLandmarks" else "inputVolume"
    setattr(widget._parameterNode, volume_field, scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode"))
    widget.logic.model = object()  # OneShot detects with a trained or loaded model
    widget._updateGui()
    assert widget.ui.detectButton.enabled is True


def test_auto_settings_show_what_the_loaded_model_derived(scene):
    """Advanced spin boxes left at 'auto' show the value a model derived, and the .ui's text again
    for a model that derived nothing (a synthetic model: only its settings and derivation matter)."""
    from OneShotLandmarksLib.config import DetectionConfig, TrainingConfig

    loaded, _ = _load_module_file("OneShotLandmarks")
    widget = loaded.OneShotLandmarksWidget(slicer.qMRMLWidget())
    widget.ui = _fake_ui("OneShotLandmarks")
    widget.logic = widget.logicClass(scene)
    training = TrainingConfig(margin_mm=1.5, max_translation_mm=4.0)
    derived = types.SimpleNamespace(
        training=training, detection=DetectionConfig(), derivation={"derived": ["margin_mm"]}
    )
    widget._showDerivedSettings(derived)
    assert widget.ui.marginSpinBox.specialValueText == "auto (this model: 1.5 mm)"
    assert widget.ui.translationSpinBox.specialValueText == "auto (from the SOI)"  # given, not derived
    widget._showDerivedSettings(types.SimpleNamespace(training=training, detection=DetectionConfig()))
    assert widget.ui.marginSpinBox.specialValueText == "auto (from the SOI)"
