"""Static checks of the Slicer-facing files: .ui, module sources, CMake lists, icons."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from module_test_helpers import MODULES, REPO_ROOT
from PIL import Image

QT_WIDGETS = {
    "QWidget",
    "QLabel",
    "QPushButton",
    "QCheckBox",
    "QComboBox",
    "QSpinBox",
    "QDoubleSpinBox",
    "QProgressBar",
    "QLineEdit",
    "QGroupBox",
    "QFrame",
    "QTextEdit",
    "QSlider",
}
LAYOUTS = {"QVBoxLayout", "QHBoxLayout", "QFormLayout", "QGridLayout"}


def ui_path(module: str) -> Path:
    return REPO_ROOT / module / "Resources" / "UI" / f"{module}.ui"


def ui_widgets(module: str) -> dict[str, ET.Element]:
    widgets = ET.parse(ui_path(module)).getroot().iter("widget")
    return {w.get("name"): w for w in widgets}


@pytest.mark.parametrize("module", MODULES)
def test_ui_is_valid_qt_designer_xml(module):
    root = ET.parse(ui_path(module)).getroot()
    assert root.tag == "ui" and root.get("version") == "4.0"
    top = root.find("widget")
    assert root.findtext("class") == top.get("name") == module
    assert top.get("class") == "qMRMLWidget"
    names = [w.get("name") for w in root.iter("widget")]
    assert len(names) == len(set(names)), "widget names must be unique"
    declared = {cw.findtext("class"): cw for cw in root.iter("customwidget")}
    for cw in declared.values():
        assert cw.findtext("extends") and cw.findtext("header", "").endswith(".h")
    for widget in root.iter("widget"):
        cls = widget.get("class")
        assert cls in QT_WIDGETS or cls in declared, f"{cls} is neither a Qt widget nor declared"
    for layout in root.iter("layout"):
        assert layout.get("class") in LAYOUTS
        for item in layout.findall("item"):
            assert len(list(item)) == 1 and item[0].tag in ("widget", "layout", "spacer")
        if layout.get("class") == "QFormLayout":
            cells = [(i.get("row"), i.get("column")) for i in layout.findall("item")]
            assert len(cells) == len(set(cells)), f"{layout.get('name')}: two items in one cell"
    for connection in root.iter("connection"):
        assert connection.findtext("sender") in names and connection.findtext("receiver") in names
    mrml_widgets = [
        w.get("name")
        for w in root.iter("widget")
        if w.get("class") in ("qMRMLNodeComboBox", "qMRMLSegmentSelectorWidget", "qSlicerSimpleMarkupsWidget")
    ]
    receivers = {
        c.findtext("receiver")
        for c in root.iter("connection")
        if c.findtext("slot") == "setMRMLScene(vtkMRMLScene*)"
    }
    assert set(mrml_widgets) <= receivers, "every MRML widget must receive the scene"


@pytest.mark.parametrize("module", MODULES)
def test_ui_has_progress_status_and_cancel(module):
    widgets = ui_widgets(module)
    assert widgets["progressBar"].get("class") == "QProgressBar"
    assert widgets["cancelButton"].get("class") == "QPushButton"
    assert widgets["statusLabel"].get("class") == "QLabel"
    assert any(w.get("class") == "ctkCollapsibleButton" for w in widgets.values())
    assert any(w.get("class") == "ctkPathLineEdit" for w in widgets.values())


def widget_sources(module: str) -> str:
    """The module's Slicer-side sources, with the shared detector Widget for the 2D modules."""
    files = [
        REPO_ROOT / module / f"{module}.py",
        *sorted((REPO_ROOT / module / f"{module}Slicer").glob("*.py")),
    ]
    if module != "OneShotLandmarks":
        files.append(REPO_ROOT / "LandmarkCore" / "LandmarkSlicerLib" / "widgets.py")
    return "\n".join(path.read_text() for path in files)


@pytest.mark.parametrize("module", MODULES)
def test_every_ui_name_the_widget_uses_exists(module):
    used = set(re.findall(r"self\.ui\.(\w+)", widget_sources(module)))
    assert used, "the Widget should use its .ui"
    missing = used - set(ui_widgets(module))
    assert not missing, f"{module}'s Widget uses widgets missing from the .ui: {sorted(missing)}"


@pytest.mark.parametrize("module", MODULES)
def test_every_slicer_parameter_name_is_a_parameter_node_field(module, scene):
    import importlib

    parameter_class = getattr(importlib.import_module(f"{module}Slicer.parameters"), f"{module}ParameterNode")
    fields = set(parameter_class.allParameters)
    bound = {}
    for name, widget in ui_widgets(module).items():
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                assert prop.get("stdset") == "0", f"{name}: SlicerParameterName must be a dynamic property"
                bound[name] = prop.findtext("string")
    assert bound, "no widget is bound to the parameter node"
    unknown = {w: p for w, p in bound.items() if p not in fields}
    assert not unknown, f"SlicerParameterName without a parameter-node field: {unknown}"
    assert len(set(bound.values())) == len(bound), "two widgets bound to one parameter"


@pytest.mark.parametrize("module", ["OneShotLandmarks", "KneeLandmarks"])
def test_a_model_file_that_is_written_opens_a_save_dialog(module):
    """ctkPathLineEdit opens a Save dialog for Writable files; Readable would ask for an existing file."""
    properties = {
        p.get("name"): p.findtext("set") for p in ui_widgets(module)["modelPathLineEdit"].findall("property")
    }
    assert "ctkPathLineEdit::Writable" in properties["filters"] and "Readable" not in properties["filters"]
    assert properties["options"] == "ctkPathLineEdit::DontConfirmOverwrite"  # the file is also read


def test_module_cmake_installs_every_script_and_resource():
    text = (REPO_ROOT / "CMakeLists.txt").read_text()
    function = re.search(r"function\(landmark_scripted_module MODULE_NAME\)(.*?)endfunction", text, re.S)
    assert function, "no landmark_scripted_module() in the top-level CMakeLists.txt"
    body = " ".join(function.group(1).split())
    for expected in (
        "file(GLOB_RECURSE package_scripts RELATIVE ${CMAKE_CURRENT_SOURCE_DIR} "
        "${MODULE_NAME}Slicer/*.py ${MODULE_NAME}Lib/*.py)",
        "file(GLOB bundled_models RELATIVE ${CMAKE_CURRENT_SOURCE_DIR} ${MODULE_NAME}Lib/models/*)",
        "SCRIPTS ${MODULE_NAME}.py ${package_scripts}",
        "RESOURCES Resources/Icons/${MODULE_NAME}.png Resources/UI/${MODULE_NAME}.ui ${bundled_models}",
        "slicer_add_python_unittest(SCRIPT ${MODULE_NAME}.py)",
    ):
        assert expected in body, expected
    assert text.index("function(landmark_scripted_module") < text.index("add_subdirectory(OneShotLandmarks)")
    for module in MODULES:
        call = (REPO_ROOT / module / "CMakeLists.txt").read_text()
        assert call.startswith(f"landmark_scripted_module({module})"), module
        for resource in (f"Resources/Icons/{module}.png", f"Resources/UI/{module}.ui", f"{module}.py"):
            assert (REPO_ROOT / module / resource).is_file(), resource


def test_landmark_core_cmake_installs_every_file():
    text = (REPO_ROOT / "LandmarkCore" / "CMakeLists.txt").read_text()
    assert "foreach(package LandmarkCoreLib LandmarkSlicerLib)" in text
    assert "file(GLOB_RECURSE package_scripts RELATIVE ${CMAKE_CURRENT_SOURCE_DIR} ${package}/*.py)" in text
    assert "ctkMacroCompilePythonScript(" in text


def test_no_cmake_test_needs_pytest_inside_slicer():
    for cmake in REPO_ROOT.glob("*/**/CMakeLists.txt"):
        assert "pytest" not in cmake.read_text(), cmake


def test_cmake_states_the_supported_slicer():
    text = (REPO_ROOT / "CMakeLists.txt").read_text()
    assert "Slicer 5.10 or later" in text and 'set(EXTENSION_MINIMUM_SLICER_VERSION "5.10")' in text
    assert "find_package(Slicer ${EXTENSION_MINIMUM_SLICER_VERSION} REQUIRED)" in text


def test_extension_cmake_metadata_and_modules():
    text = (REPO_ROOT / "CMakeLists.txt").read_text()
    for key in (
        "EXTENSION_HOMEPAGE",
        "EXTENSION_CATEGORY",
        "EXTENSION_CONTRIBUTORS",
        "EXTENSION_DESCRIPTION",
        "EXTENSION_ICONURL",
        "EXTENSION_SCREENSHOTURLS",
    ):
        assert re.search(rf'set\({key} "[^"]+"\)', text), key
    assert re.search(r'set\(EXTENSION_DEPENDS "?PyTorch"?\)', text)
    for sub in ("LandmarkCore", *MODULES):
        assert f"add_subdirectory({sub})" in text


@pytest.mark.parametrize("module", MODULES)
def test_icon_is_a_128_pixel_png(module):
    with Image.open(REPO_ROOT / module / "Resources" / "Icons" / f"{module}.png") as icon:
        assert icon.format == "PNG" and icon.size == (128, 128)


def _run_python(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_modules_load_without_torch():
    """Slicer loads the modules at startup, before the PyTorch extension may have installed torch."""
    checks = "; ".join(f"import {m}; assert {m}.{m}Logic and {m}.{m}Widget and {m}.{m}Test" for m in MODULES)
    code = (
        "import sys; sys.path.insert(0, 'Testing/slicer_modules'); import slicer_environment; "
        f"slicer_environment.install(); {checks}; print('torch' in sys.modules)"
    )
    assert _run_python(code) == "False", "torch was imported when the modules were loaded"


def test_logics_run_on_plain_mrml_without_qt():
    """A web front end or a script uses the Logic on slicer-core's MRML alone: no qt, ctk or torch."""
    checks = "; ".join(
        f"sys.path.insert(0, '{m}'); from {m}Slicer.logic import {m}Logic; "
        f"logic = {m}Logic(slicer.vtkMRMLScene()); node = logic.parameterNodeMRML(); "
        "assert node.GetScene() is logic.scene and node.GetAttribute('ModuleName') == logic.moduleName"
        for m in MODULES
    )
    code = (
        f"import sys, slicer; {checks}; print(sorted(m for m in ('qt', 'ctk', 'torch') if m in sys.modules))"
    )
    assert _run_python(code) == "[]"


def test_a_setting_left_to_be_derived_shows_auto_in_its_spin_box(scene):
    """Optional lengths sit at DERIVED (the spin box's minimum); the spin box names that value."""
    from LandmarkCoreLib.settings import setting_specs
    from LandmarkSlicerLib.parameters import parameter_name
    from OneShotLandmarksLib.config import TrainingConfig

    derivable = {
        parameter_name(s.name) for s in setting_specs(TrainingConfig) if s.optional and s.type is float
    }
    for name, widget in ui_widgets("OneShotLandmarks").items():
        properties = {p.get("name"): p for p in widget.findall("property")}
        bound = properties.get("SlicerParameterName")
        if bound is not None and bound.findtext("string") in derivable:
            assert properties["specialValueText"].findtext("string").startswith("auto ("), name
