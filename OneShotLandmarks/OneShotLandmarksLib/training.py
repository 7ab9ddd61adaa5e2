"""Algorithm 1: one-shot training of the shallow U-Net on randomly rotated/translated reference slices.

Early stopping on the BCE of the 3 orthogonal slice stacks of the validation image (patience), best
weights kept. A checkpoint after every epoch makes training resumable and cancellable without losing
finished epochs. Randomness is drawn from (seed, epoch), so a resumed run repeats the same samples.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk
import torch
from LandmarkCoreLib.device import select_device
from LandmarkCoreLib.errors import InputError
from LandmarkCoreLib.modelfile import ModelFile, load_model_file, save_model_file
from LandmarkCoreLib.progress import CancelToken, ProgressCallback, no_progress
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


def _train_epoch(
    net,
    optimiser,
    data: TrainingData,
    config: TrainingConfig,
    epoch: int,
    device: torch.device,
    cancel: CancelToken | None,
) -> float:
    rng = np.random.default_rng([config.seed, epoch])
    torch.manual_seed(config.seed * 100003 + epoch)
    net.train()
    losses = []
    axes = image_axes(data.reference)
    for _ in range(config.volumes_per_epoch):
        rotation, translation = random_pose(rng, config.max_rotation_deg, config.max_translation_mm)
        grid = PatchGrid(
            data.reference_centre + translation, rotation @ axes, config.working_spacing_mm, (data.size,) * 3
        )
        x, y = slices_and_labels(data.reference, data.reference_soi, grid)
        for xb, yb in _batches(x, y, config.batch_size, rng.permutation(len(x))):
            if cancel:
                cancel.check()
            loss = nn.functional.binary_cross_entropy_with_logits(net(xb.to(device)), yb.to(device))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
    return float(np.mean(losses))


def _save_checkpoint(
    path, config: TrainingConfig, inputs: str, state: TrainingState, net, optimiser, best
) -> None:
    save_model_file(
        path,
        ModelFile(
            kind=CHECKPOINT_KIND,
            config={"training": config.to_dict(), "inputs": inputs, "state": state.__dict__},
            tensors={"weights": net.state_dict(), "optimiser": optimiser.state_dict(), "best_weights": best},
        ),
    )


def _resume(path, config: TrainingConfig, inputs: str, net, optimiser) -> tuple[TrainingState, dict]:
    checkpoint = load_model_file(path, CHECKPOINT_KIND)
    if checkpoint.config["training"] != config.to_dict() or checkpoint.config.get("inputs") != inputs:
        raise InputError(
            f"checkpoint '{path}'",
            "was written with other training settings or other images; "
            "delete it or give another checkpoint path",
        )
    net.load_state_dict(checkpoint.tensors["weights"])
    optimiser.load_state_dict(checkpoint.tensors["optimiser"])
    return TrainingState(**checkpoint.config["state"]), checkpoint.tensors["best_weights"]


def train_network(
    data: TrainingData,
    config: TrainingConfig,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
    checkpoint_path: str | os.PathLike | None = None,
) -> tuple[ShallowUNet, TrainingState]:
    """Train until the validation loss stops decreasing for ``patience`` epochs; return the best net."""
    device = select_device(config.device)
    torch.manual_seed(config.seed)
    net = ShallowUNet(config.width).to(device)
    optimiser = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    state, best = TrainingState(), {k: v.detach().clone() for k, v in net.state_dict().items()}
    inputs = data.fingerprint()
    if checkpoint_path and os.path.exists(checkpoint_path):
        state, best = _resume(checkpoint_path, config, inputs, net, optimiser)
        progress(state.epoch / config.max_epochs, f"resumed at epoch {state.epoch}")
    validation_grid = PatchGrid(
        data.validation_centre, image_axes(data.validation), config.working_spacing_mm, (data.size,) * 3
    )
    val_x, val_y = slices_and_labels(data.validation, data.validation_soi, validation_grid)
    while state.epoch < config.max_epochs and state.epochs_without_improvement < config.patience:
        started = time.perf_counter()
        for group in optimiser.param_groups:
            group["lr"] = config.learning_rate * config.lr_decay_per_epoch**state.epoch
        train_loss = _train_epoch(net, optimiser, data, config, state.epoch, device, cancel)
        val_loss = _loss(net, val_x, val_y, 2 * config.batch_size, device)
        if val_loss < state.best_loss:
            state.best_loss, state.best_epoch, state.epochs_without_improvement = val_loss, state.epoch, 0
            best = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            state.epochs_without_improvement += 1
        state.seconds += time.perf_counter() - started
        state.history.append({"epoch": state.epoch, "train_loss": train_loss, "validation_loss": val_loss})
        state.epoch += 1
        if checkpoint_path:
            _save_checkpoint(checkpoint_path, config, inputs, state, net, optimiser, best)
        progress(
            state.epoch / config.max_epochs,
            f"epoch {state.epoch}: train {train_loss:.4f} validation {val_loss:.4f}"
            f" (best {state.best_loss:.4f})",
        )
    net.load_state_dict(best)
    return net.eval(), state
