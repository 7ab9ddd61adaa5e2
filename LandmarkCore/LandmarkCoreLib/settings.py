"""One declaration per setting, from which everything else is derived.

A config dataclass declares each field with :func:`setting` (default, range or choices, help). From that one
declaration come the CLI flags (:func:`add_setting_arguments`), the flags that reproduce a config in a child
process (:func:`setting_arguments`), the range checks of a config read from a model file or a parameter node
(:func:`validate_settings`, :func:`settings_from_dict`) and the fields a GUI shows (:func:`setting_specs`).

A field declared with :func:`setting_group` holds another such dataclass (e.g. the augmentation settings of
a training config); its settings are named ``group.setting`` (flag ``--group-setting`` unless the setting
names its own) and its values stay nested in the dicts of :func:`settings_to_dict`.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from LandmarkCoreLib.errors import InputError

_META_KEY = "landmark_setting"
_GROUP_KEY = "landmark_setting_group"


@dataclass(frozen=True)
class SettingSpec:
    """What one setting is: its type, default, allowed values and help text."""

    name: str
    type: type  # float, int, str or bool; the element type for lists
    is_list: bool
    optional: bool  # None allowed (e.g. "derived from the data")
    default: Any
    minimum: float | None
    maximum: float | None
    choices: tuple | None
    help: str
    cli_flag: str | None = None  # the flag, where it is not derived from the name
    none_means: str = "derived from the data"  # what a default of None stands for (help text)

    @property
    def flag(self) -> str:
        return self.cli_flag or "--" + self.name.replace("_", "-").replace(".", "-")

    def describe_range(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(map(str, self.choices))
        if self.minimum is not None and self.maximum is not None:
            return f"in [{self.minimum:g}, {self.maximum:g}]"
        if self.minimum is not None:
            return f">= {self.minimum:g}"
        if self.maximum is not None:
            return f"<= {self.maximum:g}"
        return ""


def setting(
    default: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    choices: Iterable | None = None,
    help: str = "",
    flag: str | None = None,
    none_means: str = "derived from the data",
) -> Any:
    """A dataclass field with its allowed range; list defaults are copied per instance. ``flag``: the
    CLI flag where it is not ``--`` and the name; ``none_means``: what a default of None stands for."""
    metadata = {
        _META_KEY: {
            "minimum": minimum,
            "maximum": maximum,
            "choices": tuple(choices) if choices is not None else None,
            "help": help,
            "cli_flag": flag,
            "none_means": none_means,
        }
    }
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def fraction_setting(default: float, *, help: str = "", flag: str | None = None) -> Any:
    """A setting in [0, 1]: a probability or a fraction of something."""
    return setting(default, minimum=0.0, maximum=1.0, help=help, flag=flag)


def seed_setting(default: int = 0) -> Any:
    """The random seed of a run (any 31-bit value, as every RNG here takes)."""
    return setting(default, minimum=0, maximum=2**31 - 1, help="random seed")


def setting_group(cls: type) -> Any:
    """A dataclass field holding the settings dataclass ``cls`` (its defaults unless given)."""
    return dataclasses.field(default_factory=cls, metadata={_GROUP_KEY: cls})


def _group(f: dataclasses.Field) -> type | None:
    return f.metadata.get(_GROUP_KEY)


def _resolve_type(annotation: Any) -> tuple[type, bool, bool]:
    """(element type, is_list, optional) of an annotation such as ``list[float] | None``."""
    optional = False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(members) < len(typing.get_args(annotation))
        if len(members) != 1:
            raise TypeError(f"setting type {annotation!r}: one type (or it | None) expected")
        annotation = members[0]
        origin = typing.get_origin(annotation)
    if origin is list:
        (element,) = typing.get_args(annotation)
        return element, True, optional
    return annotation, False, optional


def setting_specs(cls: type) -> list[SettingSpec]:
    """The specs of every setting of a settings dataclass (class or instance), in declaration order; a
    group's settings in its place, named ``group.setting``."""
    hints = typing.get_type_hints(cls if isinstance(cls, type) else type(cls))
    specs = []
    for f in dataclasses.fields(cls):
        if _group(f) is not None:
            specs += [dataclasses.replace(s, name=f"{f.name}.{s.name}") for s in setting_specs(_group(f))]
            continue
        meta = f.metadata.get(_META_KEY)
        if meta is None:
            raise TypeError(f"{cls.__name__}.{f.name} is not declared with setting()")
        element, is_list, optional = _resolve_type(hints[f.name])
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        specs.append(SettingSpec(f.name, element, is_list, optional, default, **meta))
    return specs


def _value_of(obj: Any, name: str) -> Any:
    """The value of setting ``name`` (``group.setting`` in a group) of ``obj``."""
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def _check_value(spec: SettingSpec, value: Any) -> str | None:
    """Why ``value`` (one element) is not allowed, or None."""
    if spec.type is bool:
        return None if isinstance(value, bool) else f"must be true or false, got {value!r}"
    if spec.type in (int, float):
        numeric = (int,) if spec.type is int else (int, float)
        if isinstance(value, bool) or not isinstance(value, numeric):
            return f"must be a{'n integer' if spec.type is int else ' number'}, got {value!r}"
        if not math.isfinite(value):
            return f"must be finite, got {value!r}"
        if (spec.minimum is not None and value < spec.minimum) or (
            spec.maximum is not None and value > spec.maximum
        ):
            return f"must be {spec.describe_range()}, got {value!r}"
    elif not isinstance(value, spec.type):
        return f"must be a {spec.type.__name__}, got {value!r}"
    if spec.choices is not None and value not in spec.choices:
        return f"must be {spec.describe_range()}, got {value!r}"
    return None


def _problem(spec: SettingSpec, value: Any) -> str | None:
    if value is None:
        return None if spec.optional else "must be set, got None"
    if not spec.is_list:
        return _check_value(spec, value)
    if not isinstance(value, list) or not value:
        return f"must be a non-empty list, got {value!r}"
    return next((p for p in (_check_value(spec, v) for v in value) if p), None)


def validate_settings(obj: Any, what: str, as_flags: bool = False) -> None:
    """Raise :class:`InputError` naming the first field (or its CLI flag) of ``obj`` outside its range."""
    for spec in setting_specs(obj):
        problem = _problem(spec, _value_of(obj, spec.name))
        if problem:
            raise InputError(f"{what} '{spec.flag if as_flags else spec.name}'", problem)


def settings_to_dict(obj: Any) -> dict[str, Any]:
    """The JSON-able values of a settings dataclass."""
    return dataclasses.asdict(obj)


def settings_from_dict(cls: type, values: dict[str, Any], what: str, as_flags: bool = False) -> Any:
    """A validated ``cls`` from a mapping (model file, parameter node, run config; a group's settings in
    a nested mapping); refuses unknown keys."""
    obj = _build(cls, values, what, "")
    validate_settings(obj, what, as_flags)
    return obj


def _build(cls: type, values: Any, what: str, prefix: str) -> Any:
    """``cls`` from ``values`` (groups built from their nested mappings), not yet range-checked."""
    if not isinstance(values, dict):
        where = f" for {prefix[:-1]}" if prefix else ""
        raise InputError(what, f"expected a mapping of settings{where}, got {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise InputError(what, f"unknown settings {', '.join(prefix + name for name in unknown)}")
    specs = {s.name: s for s in setting_specs(cls)}
    built = {}
    for name, value in values.items():
        group = _group(fields[name])
        if group is not None:
            built[name] = _build(group, value, what, f"{prefix}{name}.")
        else:
            built[name] = float(value) if _wants_float(specs[name], value) else value
    return cls(**built)


def _wants_float(spec: SettingSpec, value: Any) -> bool:
    """JSON writes 1.0 as 1; accept an int where a float is declared."""
    return spec.type is float and not spec.is_list and isinstance(value, int) and not isinstance(value, bool)


def _selected(cls: type, names: Iterable[str] | None) -> list[SettingSpec]:
    specs = setting_specs(cls)
    if names is None:
        return specs
    names = list(names)
    by_name = {s.name: s for s in specs}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise KeyError(f"{cls.__name__} has no settings {missing}")
    return [by_name[n] for n in names]


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _parse_number(kind: type):
    def parse(text: str):
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a{'n integer' if kind is int else ' number'}, got {text!r}"
            ) from None

    parse.__name__ = kind.__name__
    return parse


def add_setting_arguments(
    parser: argparse.ArgumentParser,
    cls: type,
    names: Iterable[str] | None = None,
    required: Iterable[str] = (),
) -> None:
    """Add one flag per setting; a flag left out keeps the dataclass default (argparse default None).
    The settings named in ``required`` have no default on the command line: their flags must be given."""
    required = set(required)
    for spec in _selected(cls, names):
        parse = (
            _parse_bool
            if spec.type is bool
            else _parse_number(spec.type)
            if spec.type in (int, float)
            else str
        )
        default = spec.none_means if spec.default is None and spec.optional else spec.default
        shown_default = "" if spec.name in required else f"default: {default}"
        details = "; ".join(p for p in (spec.describe_range(), shown_default) if p)
        details = details.replace("%", "%%")  # argparse formats help with %
        parser.add_argument(
            spec.flag,
            dest=spec.name,
            metavar=spec.flag[2:].upper().replace("-", "_"),
            required=spec.name in required,
            type=parse,
            nargs="+" if spec.is_list else None,
            default=None,
            help=f"{spec.help.replace('%', '%%')} ({details})" if spec.help else f"({details})",
        )


def settings_from_arguments(cls: type, namespace: argparse.Namespace, base: Any = None) -> Any:
    """``base`` (or the defaults) with every flag the user gave; validated."""
    given = {s.name: getattr(namespace, s.name, None) for s in setting_specs(cls)}
    changes = {name: value for name, value in given.items() if value is not None}
    return settings_with_changes(cls, changes, "option", base=base, as_flags=True)


def settings_with_changes(
    cls: type, changes: dict[str, Any], what: str, base: Any = None, as_flags: bool = False
) -> Any:
    """``base`` (or ``cls``'s defaults) with ``changes`` (setting name -> value, ``group.setting`` for a
    group's); validated."""
    values = settings_to_dict(base if base is not None else cls())
    for name, value in changes.items():
        *groups, leaf = name.split(".")
        target = values
        for group in groups:
            target = target[group]
        target[leaf] = value
    return settings_from_dict(cls, values, what, as_flags)


def setting_arguments(obj: Any, names: Iterable[str] | None = None) -> list[str]:
    """The flags that make :func:`settings_from_arguments` rebuild ``obj`` (None values are left out)."""
    arguments: list[str] = []
    for spec in _selected(type(obj), names):
        value = _value_of(obj, spec.name)
        if value is None:
            continue
        values = value if spec.is_list else [value]
        arguments += [
            spec.flag,
            *(
                str(v).lower() if isinstance(v, bool) else repr(v) if isinstance(v, float) else str(v)
                for v in values
            ),
        ]
    return arguments
