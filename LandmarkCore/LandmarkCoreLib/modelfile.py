"""Self-describing, checksummed model and checkpoint files.

A file is a plain ``torch.save`` dict that ``torch.load(..., weights_only=True)`` reads without
running pickled code::

    {"format": FORMAT, "format_version": 1, "kind": "oneshot-model",
     "config": {...JSON-able...}, "tensors": {...nested dicts/lists of tensors and scalars...},
     "checksum": sha256 of the canonical encoding of everything above}

``kind`` says which module (and whether a model or a resumable checkpoint) wrote it, so a knee model
given to the one-shot module is refused with a clear message. The checksum detects corruption
(truncation, flipped bytes), not tampering: anyone can write a file with a valid checksum. Writes are
atomic.

The one model-file API of the three modules: each module declares its kinds with :func:`register_kind`
(the module that owns it, a range check of every config value it carries, a one-line description);
:func:`load_model_file` refuses another kind and runs the range check on every load, so that a crafted
file cannot make detection allocate or loop without bound; :func:`describe_model_file` says what any
model file is.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .atomic import atomic_path
from .errors import InputError, ModelFileError

FORMAT = "slicer-landmark-detection-model"
FORMAT_VERSION = 1


@dataclass
class ModelFile:
    """Contents of a model file: its kind, a JSON-able config and a tree of tensors."""

    kind: str
    config: dict[str, Any]
    tensors: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelKind:
    """What a module declares about one kind of model file it writes."""

    name: str  # e.g. 'knee-model'
    module: str  # the module that reads it, e.g. 'KneeLandmarks'
    #: raises InputError naming the first config value out of its range (or KeyError/TypeError when absent)
    check: Callable[[ModelFile], None] | None = None
    describe: Callable[[ModelFile], str] | None = None  # one line: what the model detects


_KINDS: dict[str, ModelKind] = {}


def register_kind(kind: ModelKind) -> str:
    """Declare ``kind`` (done once, where the module defines it); returns its name."""
    _KINDS[kind.name] = kind
    return kind.name


def _canonical_update(digest: hashlib._Hash, node: Any) -> None:
    """Feed a nested structure to ``digest`` in an order- and type-stable way."""
    if isinstance(node, torch.Tensor):
        t = node.detach().cpu().contiguous()
        digest.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")  # 0-dim too
    elif isinstance(node, dict):
        digest.update(b"D")
        for key in sorted(node, key=str):
            digest.update(f"K{key!s}".encode())
            _canonical_update(digest, node[key])
    elif isinstance(node, (list, tuple)):
        digest.update(f"L{len(node)}".encode())
        for item in node:
            _canonical_update(digest, item)
    else:
        digest.update(f"S{type(node).__name__}:{node!r}".encode())


def _checksum(payload: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    _canonical_update(digest, payload)
    return digest.hexdigest()


def _to_tensors(node: Any) -> Any:
    """Convert numpy arrays anywhere in ``node`` to tensors (torch.save stores those safely)."""
    if isinstance(node, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(node))
    if isinstance(node, dict):
        return {k: _to_tensors(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_to_tensors(v) for v in node]
    return node


def save_model_file(path: str | os.PathLike, model: ModelFile) -> None:
    """Write ``model`` to ``path`` atomically, with its checksum."""
    config = json.loads(json.dumps(model.config))  # fail early on anything not JSON-able
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": model.kind,
        "config": config,
        "tensors": _to_tensors(model.tensors),
    }
    payload["checksum"] = _checksum(payload)
    with atomic_path(path, suffix=".tmp") as tmp:
        torch.save(payload, tmp)


def load_model_file(path: str | os.PathLike, expected_kind: str | tuple[str, ...] | None = None) -> ModelFile:
    """Read and verify a model file; raise :class:`ModelFileError` naming the file and the fault."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file '{path}': does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or unsafe pickles
        raise ModelFileError(
            f"model file '{path}': not a readable model file of this extension "
            f"(corrupt, truncated, or containing code that is not loaded for safety): {exc}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelFileError(f"model file '{path}': not a model file of this extension")
    if payload.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"model file '{path}': format version {payload.get('format_version')} is not supported "
            f"(this version reads {FORMAT_VERSION})"
        )
    stored = payload.pop("checksum", None)
    if stored != _checksum(payload):
        raise ModelFileError(f"model file '{path}': checksum mismatch, the file is corrupt or was modified")
    kind = payload["kind"]
    allowed = (expected_kind,) if isinstance(expected_kind, str) else expected_kind
    if allowed is not None and kind not in allowed:
        raise ModelFileError(
            f"model file '{path}': it is a '{kind}' file, but a {' or '.join(repr(k) for k in allowed)} "
            "file is needed here (was it made by another module?)"
        )
    model = ModelFile(kind=kind, config=payload["config"], tensors=payload["tensors"])
    _check_ranges(model, path)
    return model


def _check_ranges(model: ModelFile, path: Path) -> None:
    declared = _KINDS.get(model.kind)
    if declared is None or declared.check is None:
        return
    try:
        declared.check(model)
    except InputError as exc:
        raise ModelFileError(f"model file '{path}': {exc}") from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise ModelFileError(f"model file '{path}': incomplete {model.kind} configuration ({exc})") from None


def describe_model_file(path: str | os.PathLike) -> str:
    """One line saying what the model file at ``path`` is: its kind, the module it is for, what it detects."""
    model = load_model_file(path)
    declared = _KINDS.get(model.kind)
    if declared is None:
        return f"'{model.kind}' file (of a module that is not loaded)"
    text = f"{declared.module} '{model.kind}' file"
    return f"{text}: {declared.describe(model)}" if declared.describe is not None else text
