"""One resumable training loop for every trainer of the extension.

A trainer supplies a :class:`TrainingTask`: its network and optimiser, one unit of training (an epoch or a
step) and the evaluation after it. :func:`run_training` does the rest the same way for all of them:

- it runs ``total`` units, checking the cancel token before each one and inside it (through ``report``);
- every ``checkpoint_every`` units (and after the last) it writes a checkpoint atomically: the network, the
  optimiser, the scheduler, the task's random generator, torch's global random state and the loop's
  bookkeeping, under ``run_config``; a run given the same checkpoint resumes after its last saved unit and
  draws the same random numbers as an uninterrupted run; a checkpoint of other settings is refused;
- with ``monitor`` it keeps the weights of the unit with the lowest value of that metric, stops after
  ``patience`` units without a new lowest value, and leaves the network with the kept weights;
- it reports progress (fraction of all units, a message naming the unit) and returns the history.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import InputError, ModelFileError
from .modelfile import ModelFile, load_model_file, save_model_file
from .progress import CancelToken, ProgressCallback, no_progress

#: ``report(part of the current unit done in [0, 1], message)``, given to :meth:`TrainingTask.step`
UnitReport = Callable[[float, str], None]
UNITS = ("epoch", "step")


class TrainingTask:
    """What a trainer supplies: its network and optimiser, one unit of training and its evaluation."""

    network: nn.Module
    optimiser: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    #: a generator the task draws from; its state is checkpointed with torch's global one
    generator: torch.Generator | None = None

    def step(self, index: int, report: UnitReport) -> dict[str, float]:
        """Train unit ``index`` (0-based); return its metrics (e.g. ``{"loss": ...}``)."""
        raise NotImplementedError

    def evaluate(self, index: int) -> dict[str, float]:
        """Metrics measured after unit ``index`` (validation); none by default."""
        return {}

    def describe(self, metrics: dict[str, float]) -> str:
        """The metrics of one unit for a progress message."""
        return " ".join(f"{k} {v:.3f}" for k, v in metrics.items() if not math.isnan(v))


@dataclass
class LoopSettings:
    total: int  # units to train
    unit: str = "epoch"  # what one TrainingTask.step is: 'epoch' or 'step'
    label: str = ""  # progress prefix, e.g. 'stage 2'
    checkpoint: str | os.PathLike | None = None
    checkpoint_kind: str = "checkpoint"
    #: named parts ('training settings', 'images', ...) a checkpoint must match to be resumed
    run_config: dict[str, Any] = field(default_factory=dict)
    checkpoint_every: int = 1
    monitor: str | None = None  # metric whose lowest value's weights are kept
    patience: int | None = None  # with monitor: stop after this many units without a new lowest value
    export_only: bool = False  # restore the checkpoint and train no further


@dataclass
class LoopState:
    done: int = 0  # units finished
    history: list[dict[str, float]] = field(default_factory=list)
    best: float = math.inf  # lowest value of the monitored metric
    best_index: int = -1  # the unit (0-based) that reached it
    since_best: int = 0  # units since then
    seconds: float = 0.0


def run_training(
    task: TrainingTask,
    settings: LoopSettings,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
    log: Callable[[str], None] | None = None,
) -> LoopState:
    """Train ``task`` as ``settings`` say (see the module docstring); return the loop's state."""
    if settings.unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, not {settings.unit!r}")
    checkpoint = Path(settings.checkpoint) if settings.checkpoint is not None else None
    state, best_weights = LoopState(), None
    if checkpoint is not None and checkpoint.is_file():
        state, best_weights = _restore(task, settings, checkpoint)
        message = f"resumed at {settings.unit} {state.done}"
        progress(state.done / settings.total, message)
        if log is not None:
            log(f"{settings.label} {message} from {checkpoint}".strip())
    if settings.export_only and state.done == 0:
        raise InputError(
            f"checkpoint '{checkpoint}'", f"does not exist or holds no finished {settings.unit} to export"
        )
    if settings.monitor is not None and best_weights is None:
        best_weights = _copy(task.network.state_dict())
    while not settings.export_only and state.done < settings.total and not _patience_spent(settings, state):
        if cancel is not None:
            cancel.check()
        best_weights = _run_unit(task, settings, state, best_weights, progress, cancel)
        if checkpoint is not None and _checkpoint_due(settings, state):
            _save(task, settings, checkpoint, state, best_weights)
            if log is not None:
                log(_unit_message(settings, state.done, _summary(task, state)))
        progress(state.done / settings.total, _unit_message(settings, state.done, _summary(task, state)))
    if settings.monitor is not None:
        task.network.load_state_dict(best_weights)
    return state


def _run_unit(task, settings, state, best_weights, progress, cancel):
    index, started = state.done, time.perf_counter()

    def report(part: float, message: str) -> None:
        if cancel is not None:
            cancel.check()
        progress((index + part) / settings.total, _unit_message(settings, index + 1, message))

    metrics = task.step(index, report)
    metrics.update(task.evaluate(index))
    seconds = time.perf_counter() - started
    state.done, state.seconds = index + 1, state.seconds + seconds
    state.history.append({settings.unit: index + 1, **metrics, "seconds": seconds})
    if settings.monitor is None:
        return best_weights
    if metrics[settings.monitor] < state.best:
        state.best, state.best_index, state.since_best = metrics[settings.monitor], index, 0
        return _copy(task.network.state_dict())
    state.since_best += 1
    return best_weights


def _patience_spent(settings: LoopSettings, state: LoopState) -> bool:
    return settings.patience is not None and state.since_best >= settings.patience


def _checkpoint_due(settings: LoopSettings, state: LoopState) -> bool:
    return (
        state.done % settings.checkpoint_every == 0
        or state.done == settings.total
        or _patience_spent(settings, state)
    )


def _unit_message(settings: LoopSettings, number: int, details: str) -> str:
    head = f"{settings.label} {settings.unit} {number}/{settings.total}".strip()
    return f"{head} {details}".rstrip()


def _summary(task: TrainingTask, state: LoopState) -> str:
    metrics = {k: v for k, v in state.history[-1].items() if k not in (*UNITS, "seconds")}
    return task.describe(metrics)


def _copy(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in weights.items()}


def _save(task: TrainingTask, settings: LoopSettings, path: Path, state: LoopState, best_weights) -> None:
    tensors = {
        "network": task.network.state_dict(),
        "optimiser": task.optimiser.state_dict(),
        "torch_rng": torch.get_rng_state(),
        settings.unit: state.done,
        "loop": asdict(state),
    }
    if task.scheduler is not None:
        tensors["scheduler"] = task.scheduler.state_dict()
    if task.generator is not None:
        tensors["generator"] = task.generator.get_state()
    if best_weights is not None:
        tensors["best_weights"] = best_weights
    save_model_file(path, ModelFile(settings.checkpoint_kind, settings.run_config, tensors))


def _restore(task: TrainingTask, settings: LoopSettings, path: Path) -> tuple[LoopState, dict | None]:
    stored = load_model_file(path, settings.checkpoint_kind)
    expected = json.loads(json.dumps(settings.run_config))  # as stored: tuples become lists
    differing = [k for k in expected if stored.config.get(k) != expected[k]]
    if differing or stored.config.keys() != expected.keys():
        raise InputError(
            f"checkpoint '{path}'",
            f"was written with other {', '.join(differing) or 'settings'}; "
            "delete it or give another checkpoint path to start afresh",
        )
    tensors = stored.tensors
    try:
        task.network.load_state_dict(tensors["network"])
        task.optimiser.load_state_dict(tensors["optimiser"])
        if task.scheduler is not None:
            task.scheduler.load_state_dict(tensors["scheduler"])
        if task.generator is not None:
            task.generator.set_state(tensors["generator"])
        torch.set_rng_state(tensors["torch_rng"])
        state = LoopState(**tensors["loop"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise ModelFileError(
            f"checkpoint '{path}': incomplete or from another version ({exc}); delete it to start afresh"
        ) from None
    return state, tensors.get("best_weights")
