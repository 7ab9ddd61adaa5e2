"""Import the KNEEL authors' released snapshots into a ``knee-model`` file of this extension.

A snapshot folder (as fetched by their ``fetch_snapshots.sh``) holds ``fold_*.pth`` (one state dict per
cross-validation fold, bare or under a ``model`` key) and ``session.pkl`` (their recorded training
arguments, an ``argparse.Namespace`` inside a pickle). Their inference averages the folds' *outputs*;
so does ours (:class:`FoldEnsemble`), since averaging the weights of separately trained folds would not
give a working network.

Nothing here executes pickled code: state dicts go through ``torch.load(weights_only=True)``, and
``session.pkl`` through :class:`RestrictedUnpickler`, which rebuilds ``argparse.Namespace`` as plain
data and refuses every other global. Instead of ``session.pkl`` a JSON file with the same argument
names can be given (``--kneel-args``), e.g.::

    {"annotations": "hc", "base_width": 24, "multiscale_hg": true, "use_se": false, "se_ratio": 16,
     "use_drop": true, "hc_spacing": 0.3, "lc_spacing": 1.0, "crop_x": 256, "crop_y": 256}

Their network as released: 3 input channels (grey repeated), hourglass depth 4 (their constructor
default), bilinear upsampling, outputs 1 point (ROI, 'lc') or 16 points ('hc').
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
from pathlib import Path

import numpy as np
import torch
from LandmarkCoreLib.datasets import KNEEL_LABELS, KNEEL_ROI_SIZE_MM
from LandmarkCoreLib.errors import InputError, ModelFileError
from LandmarkCoreLib.modelfile import ModelFile, save_model_file
from LandmarkCoreLib.networks import KneelHourglass
from torch import nn

from .model_file import MODEL_KIND
from .presets import KNEE, Preset, StageGeometry

try:  # numpy >= 2 moved the array reconstruction helpers
    from numpy._core import multiarray as _multiarray
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray

KNEEL_DEPTH = 4
KNEEL_IN_CHANNELS = 3


class _Namespace:
    """Stand-in for ``argparse.Namespace`` while unpickling: attributes only, no behaviour."""

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


class UnsafePickleError(ModelFileError):
    """A pickle asked for a global that is not plain data."""


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles plain containers, numbers, strings, ``argparse.Namespace`` and numpy arrays; any other
    global (functions such as ``os.system``, arbitrary classes) raises :class:`UnsafePickleError`."""

    _ALLOWED = {
        ("argparse", "Namespace"): _Namespace,
        ("collections", "OrderedDict"): dict,
        ("numpy.core.multiarray", "_reconstruct"): _multiarray._reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _multiarray._reconstruct,
        ("numpy.core.multiarray", "scalar"): _multiarray.scalar,
        ("numpy._core.multiarray", "scalar"): _multiarray.scalar,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }

    def __init__(self, file, source: str) -> None:
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str):
        allowed = self._ALLOWED.get((module, name))
        if allowed is None:
            raise UnsafePickleError(
                f"'{self.source}': refused to load '{module}.{name}' (a pickle may run code; only plain "
                "data and argparse.Namespace are read). Give the arguments as JSON instead (--kneel-args)."
            )
        return allowed


def read_session_args(path: str | os.PathLike) -> dict:
    """The first recorded ``args`` of a KNEEL ``session.pkl`` as a dict, without running pickled code."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"KNEEL session file '{path}': does not exist")
    try:
        session = RestrictedUnpickler(io.BytesIO(path.read_bytes()), str(path)).load()
    except UnsafePickleError:
        raise
    except Exception as exc:  # corrupt pickles raise many types
        raise ModelFileError(f"KNEEL session file '{path}': not a readable pickle ({exc})") from None
    args = session.get("args") if isinstance(session, dict) else None
    if isinstance(args, (list, tuple)) and args:
        args = args[0]
    if not isinstance(args, _Namespace):
        raise ModelFileError(f"KNEEL session file '{path}': has no recorded 'args' namespace")
    return dict(vars(args))


def read_args(folder: Path, args_json: str | os.PathLike | None) -> dict:
    if args_json is not None:
        try:
            return json.loads(Path(args_json).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"KNEEL arguments '{args_json}'", f"not a readable JSON file ({exc})") from None
    return read_session_args(folder / "session.pkl")


def _fold_number(path: Path) -> int:
    match = re.search(r"fold_(\d+)", path.name)
    return int(match.group(1)) if match else 0


def read_fold_state_dicts(folder: str | os.PathLike) -> list[dict[str, torch.Tensor]]:
    """The ``fold_*.pth`` state dicts of a snapshot folder (``model`` key or bare; ``module.`` stripped)."""
    folder = Path(folder)
    files = sorted(folder.glob("fold_*.pth"), key=_fold_number)
    if not files:
        raise InputError(f"KNEEL snapshot folder '{folder}'", "contains no fold_*.pth files")
    states = []
    for path in files:
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ModelFileError(
                f"KNEEL snapshot '{path}': not loadable as plain tensors (corrupt, or containing code that "
                f"is not loaded for safety): {exc}"
            ) from None
        state = payload.get("model", payload) if isinstance(payload, dict) else None
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise ModelFileError(f"KNEEL snapshot '{path}': holds no state dict (bare or under 'model')")
        states.append({k.removeprefix("module."): v for k, v in state.items()})
    return states


def network_config_from_args(args: dict, n_landmarks: int) -> dict:
    if args.get("use_se"):
        raise ModelFileError("KNEEL snapshot: squeeze-excitation blocks (use_se) are not supported")
    try:
        return {
            "n_landmarks": n_landmarks,
            "width": int(args["base_width"]),
            "depth": int(args.get("hg_depth", KNEEL_DEPTH)),
            "block": "hmp" if args.get("multiscale_hg", True) else "bottleneck",
            "in_channels": KNEEL_IN_CHANNELS,
            "dropout": 0.25,
            "upsample": "bilinear",
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"KNEEL arguments: missing or invalid 'base_width' ({exc})") from None


def state_dict_differences(expected: dict[str, torch.Tensor], given: dict[str, torch.Tensor]) -> list[str]:
    """Human-readable list of missing/unexpected keys and shape mismatches (empty when they fit)."""
    lines = [f"missing: {k} {tuple(v.shape)}" for k, v in expected.items() if k not in given]
    lines += [f"unexpected: {k} {tuple(v.shape)}" for k, v in given.items() if k not in expected]
    lines += [
        f"shape of {k}: checkpoint {tuple(given[k].shape)}, network {tuple(v.shape)}"
        for k, v in expected.items()
        if k in given and tuple(given[k].shape) != tuple(v.shape)
    ]
    return lines


def load_into_network(state: dict[str, torch.Tensor], net_config: dict, source: str) -> KneelHourglass:
    """A :class:`KneelHourglass` holding ``state``; a mismatch raises an error listing every difference."""
    network = KneelHourglass(**net_config)
    differences = state_dict_differences(network.state_dict(), state)
    if differences:
        shown = differences[:20] + (
            [f"... and {len(differences) - 20} more"] if len(differences) > 20 else []
        )
        raise ModelFileError(
            f"{source}: the checkpoint does not fit the KNEEL network {net_config}:\n  " + "\n  ".join(shown)
        )
    network.load_state_dict(state)
    return network


class FoldEnsemble(nn.Module):
    """Average of the folds' predicted coordinates (KNEEL's n-fold inference)."""

    def __init__(self, networks: list[KneelHourglass]) -> None:
        super().__init__()
        self.folds = nn.ModuleList(networks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([net(x) for net in self.folds]).mean(0)


def _stage(folder: Path, args_json, expected_points: int | None, what: str) -> tuple[list[dict], dict, dict]:
    args = read_args(folder, args_json)
    states = read_fold_state_dicts(folder)
    n_points = int(states[0]["out_block.0.weight"].shape[0]) if "out_block.0.weight" in states[0] else 0
    if expected_points is not None and n_points != expected_points:
        raise ModelFileError(
            f"KNEEL {what} snapshot '{folder}': predicts {n_points} points, expected {expected_points}"
        )
    net_config = network_config_from_args(args, n_points)
    for i, state in enumerate(states):
        load_into_network(state, net_config, f"KNEEL snapshot '{folder}' fold {i}")
    return states, net_config, args


def import_kneel_snapshots(
    roi_folder: str | os.PathLike,
    landmark_folder: str | os.PathLike,
    output: str | os.PathLike,
    mean_std: str | os.PathLike | None = None,
    roi_args_json: str | os.PathLike | None = None,
    landmark_args_json: str | os.PathLike | None = None,
) -> ModelFile:
    """Write a two-stage ``knee-model`` from the authors' ROI ('lc') and landmark ('hc') snapshot folders.

    ``mean_std``: their ``mean_std.npy`` (per-channel mean and std of [0, 1] intensities); without it
    each crop is standardised on its own.
    """
    lc_states, lc_net, lc_args = _stage(Path(roi_folder), roi_args_json, 1, "ROI")
    hc_states, hc_net, hc_args = _stage(
        Path(landmark_folder), landmark_args_json, len(KNEEL_LABELS), "landmark"
    )
    preset = _preset_from_args(lc_args, hc_args)
    config = {
        "preset": preset.to_config(),
        "networks": {"stage1": lc_net, "stage2": hc_net},
        "training": {"source": "KNEEL released snapshots (Tiulpin et al. 2019)", "folds": len(hc_states)},
        "coordinate_convention": "kneel",
        "input_normalisation": _read_mean_std(mean_std),
        "roi_prior_mm": [0.0, 0.0],
    }
    model = ModelFile(MODEL_KIND, config, {"stage1": lc_states, "stage2": hc_states})
    save_model_file(output, model)
    return model


def _preset_from_args(lc_args: dict, hc_args: dict) -> Preset:
    lc_spacing = float(lc_args.get("lc_spacing", KNEE.stage1.spacing_mm))
    hc_spacing = float(hc_args.get("hc_spacing", KNEE.stage2.spacing_mm))
    lc_size = (
        int(lc_args.get("crop_x", KNEE.stage1.size[0])),
        int(lc_args.get("crop_y", KNEE.stage1.size[1])),
    )
    roi_px = int(round(KNEEL_ROI_SIZE_MM / hc_spacing))
    hc_size = (int(hc_args.get("crop_x", roi_px)), int(hc_args.get("crop_y", roi_px)))
    return Preset(
        name="knee",
        landmark_names=KNEE.landmark_names,
        stage1=StageGeometry(lc_spacing, lc_size),
        stage2=StageGeometry(hc_spacing, hc_size),
        mirror_side="L",
        width=int(hc_args.get("base_width", KNEE.width)),
        depth=KNEEL_DEPTH,
    )


def _read_mean_std(path: str | os.PathLike | None) -> dict | None:
    if path is None:
        return None
    try:
        mean, std = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"KNEEL mean/std file '{path}'", f"not a 2 x C numpy array ({exc})") from None
    return {
        "scale": 1.0 / 255.0,
        "mean": [float(v) for v in np.ravel(mean)],
        "std": [float(v) for v in np.ravel(std)],
    }
