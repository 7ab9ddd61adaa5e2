"""Parameter-node fields derived from the config dataclasses' one settings declaration.

A config field ``working_spacing_mm`` (declared with ``LandmarkCoreLib.settings.setting``) becomes the
parameter-node field ``workingSpacingMm`` with the same type, default and range; reading the fields
back gives a validated config. No hand-kept name maps: the declaration is the only source. A setting of
a group (``augment.mixup_alpha``) becomes ``augmentMixupAlpha``.

A numeric setting that may be None ("derived from the data") is a number field whose range starts at
:data:`DERIVED` (-1): a spin box can hold it (Slicer's connectors cannot bind Optional numbers) and
shows its ``specialValueText`` there; it reads back as None.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Optional

from LandmarkCoreLib.settings import setting_specs, settings_with_changes


def parameter_name(setting_name: str) -> str:
    """``working_spacing_mm`` -> ``workingSpacingMm`` (Slicer's parameter-node naming)."""
    head, *rest = setting_name.replace(".", "_").split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _specs(cls: type, names: Iterable[str] | None) -> list:
    specs = setting_specs(cls)
    if names is None:
        return specs
    wanted = list(names)
    by_name = {spec.name: spec for spec in specs}
    return [by_name[name] for name in wanted]


#: The parameter-node value of a numeric setting left to be derived (None in the config).
DERIVED = -1


def _derivable(spec) -> bool:
    """A number that may be None: stored as DERIVED in a parameter node."""
    return spec.optional and spec.type in (int, float) and not spec.is_list and spec.minimum is not None


def derivable_parameters(cls: type) -> dict[str, str]:
    """``{parameter-node field: setting name}`` of ``cls``'s numbers that may be left to be derived."""
    return {parameter_name(spec.name): spec.name for spec in setting_specs(cls) if _derivable(spec)}


def _annotation(spec) -> Any:
    from typing import Annotated

    from slicer.parameterNodeWrapper import Choice, Maximum, Minimum, WithinRange

    base = list[spec.type] if spec.is_list else spec.type
    if _derivable(spec):
        if not spec.minimum > DERIVED or spec.maximum is None:
            raise TypeError(f"setting {spec.name}: a derivable number needs a range above {DERIVED}")
        return Annotated[base, WithinRange(spec.type(DERIVED), spec.maximum)]
    if spec.optional:
        return Optional[base]  # noqa: UP045 -- Slicer's wrapper defaults Optional fields to None
    if spec.choices is not None:
        return Annotated[base, Choice(list(spec.choices))]
    if spec.is_list or (spec.minimum is None and spec.maximum is None):
        return base
    if spec.minimum is not None and spec.maximum is not None:
        return Annotated[base, WithinRange(spec.minimum, spec.maximum)]
    return Annotated[base, Minimum(spec.minimum) if spec.minimum is not None else Maximum(spec.maximum)]


def batch_workers_annotation() -> Any:
    """The ``batchWorkers`` field of a module's parameter node: 0 (one process) to the most offered."""
    from typing import Annotated

    from slicer.parameterNodeWrapper import WithinRange

    from .tasks import MAX_WORKERS

    return Annotated[int, WithinRange(0, MAX_WORKERS)]


def setting_fields(cls: type, names: Iterable[str] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(annotations, defaults) of the parameter-node fields for ``cls``'s settings (all, or ``names``)."""
    annotations, defaults = {}, {}
    for spec in _specs(cls, names):
        field = parameter_name(spec.name)
        annotations[field] = _annotation(spec)
        defaults[field] = list(spec.default) if spec.is_list else spec.default
        if _derivable(spec) and spec.default is None:
            defaults[field] = spec.type(DERIVED)
    return annotations, defaults


def settings_from_parameter_node(
    cls: type, parameter_node: Any, names: Iterable[str] | None = None, base: Any = None
) -> Any:
    """``base`` (or ``cls``'s defaults) with the parameter node's values for ``names``; validated."""
    changes = {}
    for spec in _specs(cls, names):
        value = getattr(parameter_node, parameter_name(spec.name))
        if _derivable(spec) and value == DERIVED:
            value = None
        changes[spec.name] = list(value) if spec.is_list else value
    return settings_with_changes(cls, changes, "setting", base=base)
