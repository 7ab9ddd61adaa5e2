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
    setting_group,
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


@dataclass
class Augment:
    p_flip: float = setting(0.5, minimum=0.0, maximum=1.0, flag="--flip-probability")
    strength: float = setting(1.0, minimum=0.0, maximum=10.0)


@dataclass
class Nested:
    stage: int = setting(2, choices=(1, 2, 3))
    threads: int | None = setting(None, minimum=1, maximum=64, help="threads", none_means="torch's")
    augment: Augment = setting_group(Augment)


def _parse_nested(argv: list[str]) -> Nested:
    parser = argparse.ArgumentParser()
    add_setting_arguments(parser, Nested, required=("stage",))
    return settings_from_arguments(Nested, parser.parse_args(argv))


def test_group_settings_are_named_in_their_group_and_keep_their_flag():
    specs = {s.name: s for s in setting_specs(Nested)}
    assert list(specs) == ["stage", "threads", "augment.p_flip", "augment.strength"]
    assert specs["augment.p_flip"].flag == "--flip-probability"
    assert specs["augment.strength"].flag == "--augment-strength"
    assert Nested().augment is not Nested().augment


def test_group_flags_reach_the_nested_config_and_required_flags_must_be_given(capsys):
    parsed = _parse_nested(["--stage", "3", "--flip-probability", "0", "--augment-strength", "2"])
    assert parsed == Nested(stage=3, augment=Augment(p_flip=0.0, strength=2.0))
    assert _parse_nested(setting_arguments(parsed)) == parsed
    with pytest.raises(InputError, match="'--flip-probability'"):
        _parse_nested(["--stage", "1", "--flip-probability", "2"])
    with pytest.raises(SystemExit) as caught:
        _parse_nested([])
    assert caught.value.code == 2 and "--stage" in capsys.readouterr().err


def test_help_says_what_none_stands_for_and_no_default_for_required_flags():
    parser = argparse.ArgumentParser()
    add_setting_arguments(parser, Nested, required=("stage",))
    text = " ".join(parser.format_help().split())
    assert "threads (in [1, 64]; default: torch's)" in text
    assert "(one of 1, 2, 3)" in text and "default: 2" not in text


def test_groups_round_trip_through_nested_dicts_and_are_range_checked_on_load():
    config = Nested(threads=4, augment=Augment(strength=0.5))
    values = settings_to_dict(config)
    assert values["augment"] == {"p_flip": 0.5, "strength": 0.5}
    assert settings_from_dict(Nested, values, "model file") == config
    assert settings_from_dict(Nested, {"augment": {"strength": 3}}, "model file").augment.strength == 3.0
    with pytest.raises(InputError, match="'augment.strength'"):
        settings_from_dict(Nested, {"augment": {"strength": 11.0}}, "model file")
    with pytest.raises(InputError, match="unknown settings augment.bogus"):
        settings_from_dict(Nested, {"augment": {"bogus": 1}}, "model file")
    with pytest.raises(InputError, match="mapping of settings for augment"):
        settings_from_dict(Nested, {"augment": 0.5}, "model file")
