"""The shared training loop on a tiny regression task: resume equals an uninterrupted run, checkpoints every
N units, cancel keeps the last checkpoint, early stop keeps the best weights, foreign checkpoints refused."""

from __future__ import annotations

import math

import pytest
import torch
from LandmarkCoreLib.errors import Cancelled, InputError
from LandmarkCoreLib.modelfile import load_model_file
from LandmarkCoreLib.progress import CancelToken
from LandmarkCoreLib.training_loop import LoopSettings, TrainingTask, run_training


class LineFit(TrainingTask):
    """y = 3x - 1 from noisy batches drawn with the task's generator; dropout draws from torch's global RNG,
    so a resumed run only matches when both random states are restored."""

    def __init__(self, validation_losses: list[float] | None = None) -> None:
        torch.manual_seed(0)
        self.network = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(1, 1))
        self.optimiser = torch.optim.SGD(self.network.parameters(), lr=0.1)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimiser, step_size=2, gamma=0.5)
        self.generator = torch.Generator().manual_seed(1)
        self.validation_losses = validation_losses

    def step(self, index, report):
        self.network.train()
        x = torch.rand(16, 1, generator=self.generator)
        y = 3 * x - 1 + 0.1 * torch.randn(16, 1, generator=self.generator)
        loss = torch.nn.functional.mse_loss(self.network(x), y)
        self.optimiser.zero_grad()
        loss.backward()
        self.optimiser.step()
        self.scheduler.step()
        report(1.0, f"loss {loss.item():.3f}")
        return {"loss": loss.item()}

    def evaluate(self, index):
        if self.validation_losses is None:
            return {}
        return {"validation": self.validation_losses[index]}


def weights(task: LineFit) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in task.network.parameters()])


def settings(tmp_path, **changes) -> LoopSettings:
    values = {
        "total": 6,
        "unit": "step",
        "label": "fit",
        "checkpoint": tmp_path / "fit.ckpt",
        "checkpoint_kind": "test-checkpoint",
        "run_config": {"training settings": {"lr": 0.1}, "data": "line"},
        "checkpoint_every": 2,
    }
    return LoopSettings(**{**values, **changes})


def test_cancelled_run_resumes_to_the_uninterrupted_weights_and_history(tmp_path):
    straight = LineFit()
    straight_state = run_training(straight, settings(tmp_path, checkpoint=None))
    token, messages = CancelToken(), []

    def cancel_at_step_three(fraction, message):
        messages.append(message)
        if message.startswith("fit step 3/6"):
            token.cancel()

    with pytest.raises(Cancelled):
        run_training(LineFit(), settings(tmp_path), cancel_at_step_three, token)
    saved = load_model_file(tmp_path / "fit.ckpt", "test-checkpoint")
    assert saved.tensors["step"] == 2  # every 2 steps: step 3 was finished but not saved
    assert messages[:2] == ["fit step 1/6 loss " + messages[0].split()[-1], messages[1]]
    resumed_messages = []
    resumed = LineFit()
    state = run_training(resumed, settings(tmp_path), lambda f, m: resumed_messages.append((f, m)))
    assert resumed_messages[0] == (pytest.approx(2 / 6), "resumed at step 2")
    assert resumed_messages[-1][0] == 1.0
    assert torch.equal(weights(resumed), weights(straight))
    assert [h["step"] for h in state.history] == [1, 2, 3, 4, 5, 6]
    assert [h["loss"] for h in state.history] == [h["loss"] for h in straight_state.history]


def test_early_stop_keeps_the_weights_of_the_best_unit(tmp_path):
    losses = [5.0, 4.0, 1.0, 2.0, 3.0, 0.5]  # best at unit 3; patience 2 stops after unit 5
    task, kept = LineFit(losses), {}

    def remember(fraction, message):
        kept[message.split()[2]] = weights(task).clone()

    state = run_training(
        task, settings(tmp_path, monitor="validation", patience=2, checkpoint=None), remember
    )
    assert state.done == 5 and state.best_index == 2 and state.best == 1.0 and state.since_best == 2
    assert torch.equal(weights(task), kept["3/6"])
    assert not torch.equal(weights(task), kept["5/6"])


def test_a_checkpoint_of_other_settings_is_refused_naming_the_part(tmp_path):
    run_training(LineFit(), settings(tmp_path, total=2))
    with pytest.raises(InputError, match=r"fit\.ckpt'?: was written with other data; delete it"):
        run_training(
            LineFit(), settings(tmp_path, run_config={"training settings": {"lr": 0.1}, "data": "x"})
        )


def test_export_only_restores_without_training_and_needs_a_checkpoint(tmp_path):
    with pytest.raises(InputError, match="holds no finished step to export"):
        run_training(LineFit(), settings(tmp_path, export_only=True))
    trained = LineFit()
    run_training(trained, settings(tmp_path, total=2))
    exported = LineFit()
    state = run_training(exported, settings(tmp_path, total=6, export_only=True))
    assert state.done == 2 and torch.equal(weights(exported), weights(trained))


def test_describe_leaves_out_missing_metrics():
    assert LineFit().describe({"loss": 0.25, "val": math.nan}) == "loss 0.250"
