"""The one settings declaration: CLI flags, child arguments and range checks all come from it."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

import pytest
from LandmarkCoreLib.errors import InputError
from LandmarkCoreLib.settings import (
    add_setting_arguments,
    setting,
    setting_arguments,
    setting_specs,
    settings_from_arguments,
    settings_from_dict,
    settings_to_dict,
    validate_settings,
)


@dataclass
class Example:
    spacing_mm: float | None = setting(None, minimum=0.05, maximum=20.0, help="grid spacing")
    width: int = setting(64, minimum=4, maximum=256, help="channels")
    transform: str = setting("similarity", choices=("rigid", "similarity"))
    iterations: list[int] = setting([40, 20], minimum=1, maximum=1000)
    flip: bool = setting(False)


def _parse(argv: list[str]) -> Example:
    parser = argparse.ArgumentParser()
    add_setting_arguments(parser, Example)
    return settings_from_arguments(Example, parser.parse_args(argv))


def test_specs_describe_types_and_ranges():
    specs = {s.name: s for s in setting_specs(Example)}
    assert specs["spacing_mm"].optional and specs["spacing_mm"].type is float
    assert specs["iterations"].is_list and specs["iterations"].type is int
    assert specs["width"].flag == "--width" and specs["width"].describe_range() == "in [4, 256]"
    assert Example().iterations is not Example().iterations  # list defaults are not shared


def test_flags_left_out_keep_defaults_and_given_flags_win():
    assert _parse([]) == Example()
    parsed = _parse(["--spacing-mm", "0.5", "--iterations", "3", "4", "5", "--flip", "true"])
    assert (parsed.spacing_mm, parsed.iterations, parsed.flip, parsed.width) == (0.5, [3, 4, 5], True, 64)


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["--spacing-mm", "0"], "--spacing-mm"),
        (["--spacing-mm", "nan"], "--spacing-mm"),
        (["--spacing-mm", "inf"], "--spacing-mm"),
        (["--width", "100000"], "--width"),
        (["--iterations", "10", "-1"], "--iterations"),
        (["--transform", "affine"], "--transform"),
    ],
)
def test_bad_values_name_the_flag(argv, flag):
    with pytest.raises(InputError) as caught:
        _parse(argv)
    assert f"'{flag}'" in str(caught.value)


def test_unparsable_value_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as caught:
        _parse(["--width", "ten"])
    assert caught.value.code == 2 and "expected an integer" in capsys.readouterr().err


def test_child_arguments_rebuild_the_same_config():
    config = Example(spacing_mm=1 / 3, width=8, transform="rigid", iterations=[7], flip=True)
    assert _parse(setting_arguments(config)) == config


def test_dict_round_trip_and_range_checks_on_load():
    config = Example(spacing_mm=2.0)
    assert settings_from_dict(Example, settings_to_dict(config), "model file") == config
    assert settings_from_dict(Example, {"spacing_mm": 1}, "model file").spacing_mm == 1.0
    with pytest.raises(InputError, match="unknown settings bogus"):
        settings_from_dict(Example, {"bogus": 1}, "model file")
    with pytest.raises(InputError, match="'iterations'"):
        settings_from_dict(Example, {"iterations": [10**9]}, "model file")
    with pytest.raises(InputError, match="'width'"):
        validate_settings(Example(width=True), "model file")
    with pytest.raises(InputError, match="finite"):
        validate_settings(Example(spacing_mm=math.nan), "model file")
