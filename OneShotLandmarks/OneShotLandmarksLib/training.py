"""Algorithm 1: one-shot training of the shallow U-Net on randomly rotated/translated reference slices.

The epochs run in the shared loop (:mod:`LandmarkCoreLib.training_loop`): early stopping on the BCE of the
3 orthogonal slice stacks of the validation image (patience), best weights kept; a checkpoint after every
epoch makes training resumable and cancellable without losing finished epochs. Randomness is drawn from
(seed, epoch), so a resumed run repeats the same samples.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk
import torch
from LandmarkCoreLib.device import select_device
from LandmarkCoreLib.progress import CancelToken, ProgressCallback, no_progress
from LandmarkCoreLib.training_loop import LoopSettings, TrainingTask, UnitReport, run_training
from torch import nn

from .config import TrainingConfig
from .sampling import PatchGrid, image_axes, random_pose, resample, slice_stacks
from .unet import ShallowUNet

CHECKPOINT_KIND = "oneshot-checkpoint"


@dataclass
class TrainingData:
    """Prepared (float, scaled, smoothed) images and masks with their SOI centres and the cube size."""

    reference: sitk.Image
    reference_soi: sitk.Image
    reference_centre: np.ndarray
    validation: sitk.Image
    validation_soi: sitk.Image
    validation_centre: np.ndarray
    size: int

    def fingerprint(self) -> str:
        """A digest of the inputs, so a checkpoint is never resumed with other images or masks."""
        digest = hashlib.sha256()
        for image in (self.reference, self.reference_soi, self.validation, self.validation_soi):
            digest.update(repr((image.GetSize(), image.GetOrigin(), image.GetSpacing())).encode())
            digest.update(sitk.GetArrayViewFromImage(image).tobytes())
        return digest.hexdigest()


@dataclass
class TrainingState:
    epoch: int = 0
    best_loss: float = float("inf")
    best_epoch: int = -1
    epochs_without_improvement: int = 0
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def slices_and_labels(image: sitk.Image, mask: sitk.Image, grid: PatchGrid) -> tuple[np.ndarray, np.ndarray]:
    """All slices of the 3 directions of a resampled patch (3K, H, W) and their soft masks."""
    volume, labels = resample(image, grid), resample(mask, grid)
    return (np.concatenate(slice_stacks(volume)), np.concatenate(slice_stacks(labels)))


def _batches(x: np.ndarray, y: np.ndarray, batch: int, order: np.ndarray):
    for start in range(0, len(order), batch):
        pick = order[start : start + batch]
        yield torch.from_numpy(x[pick])[:, None], torch.from_numpy(y[pick])[:, None]


def _loss(net: nn.Module, x: np.ndarray, y: np.ndarray, batch: int, device: torch.device) -> float:
    net.eval()
    total = 0.0
    with torch.inference_mode():
        for xb, yb in _batches(x, y, batch, np.arange(len(x))):
            logits = net(xb.to(device))
            total += float(
                nn.functional.binary_cross_entropy_with_logits(logits, yb.to(device), reduction="sum")
            )
    return total / y.size


class UNetTraining(TrainingTask):
    """Epochs of slices from randomly posed reference patches; validation BCE on the validation image."""

    def __init__(self, data: TrainingData, config: TrainingConfig, device: torch.device) -> None:
        self.data, self.config, self.device = data, config, device
        self.network = ShallowUNet(config.width).to(device)
        self.optimiser = torch.optim.Adam(self.network.parameters(), lr=config.learning_rate)
        grid = PatchGrid(
            data.validation_centre, image_axes(data.validation), config.working_spacing_mm, (data.size,) * 3
        )
        self.val_x, self.val_y = slices_and_labels(data.validation, data.validation_soi, grid)

    def step(self, index: int, report: UnitReport) -> dict[str, float]:
        config, data = self.config, self.data
        for group in self.optimiser.param_groups:
            group["lr"] = config.learning_rate * config.lr_decay_per_epoch**index
        rng = np.random.default_rng([config.seed, index])
        torch.manual_seed(config.seed * 100003 + index)
        self.network.train()
        losses = []
        axes = image_axes(data.reference)
        for volume in range(config.volumes_per_epoch):
            rotation, translation = random_pose(rng, config.max_rotation_deg, config.max_translation_mm)
            grid = PatchGrid(
                data.reference_centre + translation,
                rotation @ axes,
                config.working_spacing_mm,
                (data.size,) * 3,
            )
            x, y = slices_and_labels(data.reference, data.reference_soi, grid)
            for xb, yb in _batches(x, y, config.batch_size, rng.permutation(len(x))):
                logits = self.network(xb.to(self.device))
                loss = nn.functional.binary_cross_entropy_with_logits(logits, yb.to(self.device))
                self.optimiser.zero_grad()
                loss.backward()
                self.optimiser.step()
                losses.append(loss.item())
                report(volume / config.volumes_per_epoch, f"train {np.mean(losses):.4f}")
        return {"train_loss": float(np.mean(losses))}

    def evaluate(self, index: int) -> dict[str, float]:
        batch = 2 * self.config.batch_size
        return {"validation_loss": _loss(self.network, self.val_x, self.val_y, batch, self.device)}

    def describe(self, metrics: dict[str, float]) -> str:
        return f"train {metrics['train_loss']:.4f} validation {metrics['validation_loss']:.4f}"


def train_network(
    data: TrainingData,
    config: TrainingConfig,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
    checkpoint_path: str | os.PathLike | None = None,
) -> tuple[ShallowUNet, TrainingState]:
    """Train until the validation loss stops decreasing for ``patience`` epochs; return the best net."""
    torch.manual_seed(config.seed)
    task = UNetTraining(data, config, select_device(config.device))
    settings = LoopSettings(
        total=config.max_epochs,
        checkpoint=checkpoint_path,
        checkpoint_kind=CHECKPOINT_KIND,
        run_config={"training settings": config.to_dict(), "images": data.fingerprint()},
        monitor="validation_loss",
        patience=config.patience,
    )
    loop = run_training(task, settings, progress, cancel)
    state = TrainingState(loop.done, loop.best, loop.best_index, loop.since_best, loop.history, loop.seconds)
    return task.network.eval(), state
