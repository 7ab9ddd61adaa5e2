"""Training of the source face-recognition network (epochs) and of the target landmark detectors (steps).

Both run in the shared loop (:mod:`LandmarkCoreLib.training_loop`): resumable from a 'face-checkpoint'
file beside the output (written atomically every epoch, or every ``checkpoint_every`` steps, with the
network, the optimiser and the random state), cancellable between steps; a cancel keeps the last saved
checkpoint.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from LandmarkCoreLib.errors import InputError, ModelFileError
from LandmarkCoreLib.modelfile import ModelFile, save_model_file
from LandmarkCoreLib.progress import CancelToken, ProgressCallback, no_progress
from LandmarkCoreLib.training_loop import LoopSettings, TrainingTask, UnitReport, run_training

from .config import CHECKPOINT_KIND, MODEL_KIND, SOURCE_KIND, SourceConfig, TargetConfig
from .data import BOX_MARGIN, CACHE_CONTEXT, CachedSplit, augment_batch
from .decoder import gaussian_heatmaps
from .losses import classifier_distillation_loss, coordinate_loss, encoder_distillation_loss, heatmap_loss
from .methods import build_network, freeze, get_method, init_from_source
from .resnet import FaceClassifier


def poly_lr(base: float, step: int, total: int, power: float = 0.9) -> float:
    """Polynomial decay, as in the paper's training schedule."""
    return base * (1.0 - min(step, total - 1) / total) ** power


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def checkpoint_path(output: Path) -> Path:
    return output.with_name(output.name + ".checkpoint")


def _loop_settings(output: str | os.PathLike, run_config: dict, **loop) -> LoopSettings:
    """The loop settings of a face training written to ``output`` (its checkpoint lies beside it)."""
    return LoopSettings(
        checkpoint=checkpoint_path(Path(output)),
        checkpoint_kind=CHECKPOINT_KIND,
        run_config=run_config,
        **loop,
    )


def epoch_batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    order = torch.randperm(n, generator=generator)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def source_model_file(
    network: FaceClassifier, config: SourceConfig, classes: list[str], metrics: dict[str, float]
) -> ModelFile:
    return ModelFile(
        SOURCE_KIND,
        {
            "architecture": {"depth": config.depth, "width": config.width, "n_classes": len(classes)},
            "input_size": config.input_size,
            "classes": classes,
            "training": asdict(config),
            "metrics": metrics,
        },
        {"state_dict": network.state_dict()},
    )


def build_source(model: ModelFile) -> FaceClassifier:
    """The source network stored in a 'face-source' file (frozen, in inference mode)."""
    arch = model.config["architecture"]
    network = FaceClassifier(arch["depth"], arch["n_classes"], arch.get("width", 64))
    try:
        network.load_state_dict(model.tensors["state_dict"])
    except RuntimeError as exc:
        raise ModelFileError(f"source model: weights do not fit a ResNet-{arch['depth']}: {exc}") from None
    network.eval()
    for parameter in network.parameters():
        parameter.requires_grad_(False)
    return network


@torch.no_grad()
def identity_accuracy(
    network: FaceClassifier, split: CachedSplit, input_size: int, batch: int = 128
) -> float:
    network.eval()
    correct = 0
    generator = torch.Generator().manual_seed(0)
    for start in range(0, len(split.names), batch):
        images, _ = augment_batch(
            split.images[start : start + batch],
            split.points[start : start + batch],
            input_size,
            generator,
            augment=False,
        )
        correct += int((network(images).argmax(1) == split.identities[start : start + batch]).sum())
    return correct / len(split.names)


class SourceTraining(TrainingTask):
    """Epochs of identity classification with a polynomially decaying learning rate."""

    def __init__(self, train: CachedSplit, config: SourceConfig, validation: CachedSplit | None) -> None:
        self.train, self.config, self.validation = train, config, validation
        self.generator = torch.Generator().manual_seed(config.seed)
        self.network = FaceClassifier(config.depth, len(train.classes), config.width)
        self.optimiser = torch.optim.AdamW(
            self.network.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        )
        self.steps_per_epoch = math.ceil(len(train.names) / config.batch_size)

    def step(self, index: int, report: UnitReport) -> dict[str, float]:
        config, train = self.config, self.train
        self.network.train()
        loss_sum = 0.0
        for i, batch in enumerate(epoch_batches(len(train.names), config.batch_size, self.generator)):
            step = index * self.steps_per_epoch + i
            _set_lr(self.optimiser, poly_lr(config.learning_rate, step, self.steps_per_epoch * config.epochs))
            images, _ = augment_batch(
                train.images[batch], train.points[batch], config.input_size, self.generator
            )
            loss = F.cross_entropy(
                self.network(images), train.identities[batch], label_smoothing=config.label_smoothing
            )
            self.optimiser.zero_grad(set_to_none=True)
            loss.backward()
            self.optimiser.step()
            loss_sum += float(loss.detach())
            report((i + 1) / self.steps_per_epoch, f"loss {float(loss.detach()):.3f}")
        return {"loss": loss_sum / self.steps_per_epoch}

    def evaluate(self, index: int) -> dict[str, float]:
        if self.validation is None or (index + 1) % 5:
            return {}
        accuracy = identity_accuracy(self.network, self.validation, self.config.input_size)
        return {"validation identity accuracy": accuracy}


def train_source(
    train: CachedSplit,
    config: SourceConfig,
    output: str | os.PathLike,
    validation: CachedSplit | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
    log: Callable[[str], None] = print,
) -> ModelFile:
    """Train the face-recognition source network on the identity labels of ``train``."""
    torch.manual_seed(config.seed)
    task = SourceTraining(train, config, validation)
    settings = _loop_settings(
        output, {"training settings": asdict(config)}, total=config.epochs, label="source"
    )
    run_training(task, settings, progress, cancel, log)
    metrics = {}
    if validation is not None:
        metrics["identity_accuracy_test_split"] = identity_accuracy(
            task.network, validation, config.input_size
        )
    model = source_model_file(task.network, config, train.classes, metrics)
    save_model_file(output, model)
    return model


# --------------------------------------------------------------------------- target (landmark) training


def labelled_subset(n_train: int, n_labels: int, seed: int) -> torch.Tensor:
    """Indices of the ``n_labels`` labelled training images for ``seed`` (all when 0 or too many)."""
    if n_labels < 0:
        raise InputError("number of labelled images", f"{n_labels} is negative")
    if n_labels == 0 or n_labels >= n_train:
        return torch.arange(n_train)
    return torch.randperm(n_train, generator=torch.Generator().manual_seed(1000 + seed))[:n_labels]


def target_architecture(config: TargetConfig, source: ModelFile | None, n_points: int) -> dict[str, Any]:
    if get_method(config.method).hourglass:
        return {
            "type": "hourglass",
            "n_points": n_points,
            "width": config.hourglass_width,
            "depth": config.hourglass_depth,
        }
    arch = source.config["architecture"]
    return {
        "type": "resnet-simplebaselines",
        "n_points": n_points,
        "depth": arch["depth"],
        "width": arch.get("width", 64),
        "decoder_channels": config.decoder_channels,
        "decoder_stages": config.decoder_stages,
    }


def _fine_tuning_config(initial_model: ModelFile, network_config: dict[str, Any]) -> dict[str, Any]:
    """The network settings of ``initial_model``, refused when its family differs from the method's."""
    initial = initial_model.config
    if initial["architecture"]["type"] != network_config["architecture"]["type"]:
        raise InputError(
            "initial model",
            f"is a {initial['architecture']['type']} network; this method trains a "
            f"{network_config['architecture']['type']}",
        )
    if initial["input_size"] != network_config["input_size"]:
        raise InputError(
            "initial model",
            f"takes {initial['input_size']} px crops; the source model takes {network_config['input_size']}",
        )
    return {**network_config, "architecture": dict(initial["architecture"])}


def heatmap_points(points: torch.Tensor, network: torch.nn.Module) -> torch.Tensor:
    """Input-pixel coordinates -> heatmap-pixel coordinates of ``network``."""
    return (points - network.cell_centre) / network.stride


def _step_loss(network, source, method, images, points, config) -> tuple[torch.Tensor, dict[str, float]]:
    if method.regularised:
        features = network.features(images)
        predicted = network.decoder(features)
    else:
        predicted = network.heatmaps(images)
    targets = heatmap_points(points, network)
    loss = heatmap_loss(predicted, gaussian_heatmaps(targets, predicted.shape[-1], config.sigma))
    parts = {"heatmap": float(loss.detach())}
    if config.coordinate_weight:
        coordinates = coordinate_loss(predicted, targets)
        parts["coordinates"] = float(coordinates.detach())
        loss = loss + config.coordinate_weight * coordinates
    if method.regularised:
        with torch.no_grad():
            source_features = source.encoder(images)
        if method.encoder_weight:
            reg = encoder_distillation_loss(features, source_features)
            parts["ED"] = float(reg.detach())
            loss = loss + method.encoder_weight * reg
        if method.classifier_weight:
            with torch.no_grad():
                source_logits = source.classify(source_features)
            reg = classifier_distillation_loss(source.classify(features), source_logits, config.temperature)
            parts["CD"] = float(reg.detach())
            loss = loss + method.classifier_weight * reg
    return loss, parts


class TargetTraining(TrainingTask):
    """Steps of heatmap training on the labelled subset, with the method's regularisers."""

    def __init__(self, train, config, network, source, subset, input_size, validation=None) -> None:
        self.train, self.config, self.source, self.subset = train, config, source, subset
        self.validation = validation
        self.method, self.input_size = get_method(config.method), input_size
        self.generator = torch.Generator().manual_seed(config.seed)
        self.network = network
        self.frozen = freeze(network, self.method) if source is not None else []
        trainable = [p for p in network.parameters() if p.requires_grad]
        self.optimiser = torch.optim.Adam(trainable, lr=config.learning_rate)

    def step(self, index: int, report: UnitReport) -> dict[str, float]:
        config, train = self.config, self.train
        self.network.train()
        for module in self.frozen:
            module.eval()
        batch = self.subset[torch.randint(len(self.subset), (config.batch_size,), generator=self.generator)]
        images, points = augment_batch(
            train.images[batch],
            train.points[batch],
            self.input_size,
            self.generator,
            photometric=config.photometric,
        )
        images = images.contiguous(memory_format=torch.channels_last)
        _set_lr(self.optimiser, poly_lr(config.learning_rate, index, config.steps))
        loss, parts = _step_loss(self.network, self.source, self.method, images, points, config)
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        self.optimiser.step()
        return {"loss": float(loss.detach()), **parts}

    def evaluate(self, index: int) -> dict[str, float]:
        every = self.config.evaluate_every
        if self.validation is None or not every or ((index + 1) % every and index + 1 != self.config.steps):
            return {}
        from .pipeline import FaceModel  # the pipeline imports this module
        from .scoring import face_metrics, normalised_errors, predict_cached

        self.network.eval()
        model = FaceModel(
            self.network, {"input_size": self.input_size, "training": asdict(self.config)}, Path()
        )
        predicted, truth, _ = predict_cached(model, self.validation)
        metrics = face_metrics(normalised_errors(predicted, truth), self.validation.names)
        return {"validation NME": metrics["NME"], "validation FR@0.1": metrics["FR@0.1"]}


def train_target(
    train: CachedSplit,
    config: TargetConfig,
    output: str | os.PathLike,
    source_model: ModelFile | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
    log: Callable[[str], None] = print,
    export_only: bool = False,
    validation: CachedSplit | None = None,
    initial_model: ModelFile | None = None,
) -> ModelFile:
    """Train a landmark detector with ``config.method`` on ``config.n_labels`` labelled training images.

    The source network (face recognition) initialises the encoder and, for CTD-*, runs frozen in
    inference mode to give the regularisation targets.  ``initial_model`` (a 'face-model', e.g. the
    bundled one) instead starts every weight from that detector: fine-tuning, with its architecture
    and crop size.  Resumes from ``output``.checkpoint;
    ``export_only`` writes the model of the checkpoint's last step without training further.  With
    ``validation`` (a split never trained on) the true-box NME on it is logged every
    ``config.evaluate_every`` steps.
    """
    method = get_method(config.method)
    if method.needs_source and source_model is None:
        raise InputError("source model", f"method {method.name} starts from a source model; none was given")
    source = build_source(source_model).to(memory_format=torch.channels_last) if method.needs_source else None
    input_size = source_model.config["input_size"] if source_model is not None else None
    input_size = input_size or int(round(train.images.shape[-1] / CACHE_CONTEXT))
    torch.manual_seed(config.seed)
    network_config = {
        "architecture": target_architecture(config, source_model, train.points.shape[1]),
        "input_size": input_size,
        "box_margin": BOX_MARGIN,
    }
    if initial_model is not None:
        network_config = _fine_tuning_config(initial_model, network_config)
    # channels_last: measured 15 % faster training steps on this CPU (bf16 autocast was slower)
    network = build_network(network_config).to(memory_format=torch.channels_last)
    if initial_model is not None:
        network.load_state_dict(initial_model.tensors["state_dict"])
    elif source is not None:
        init_from_source(network, source)
    subset = labelled_subset(len(train.names), config.n_labels, config.seed)
    task = TargetTraining(train, config, network, source, subset, input_size, validation)
    run_config = {
        "training settings": asdict(config),
        "network": network_config,
        "training images": len(train.names),
    }
    settings = _loop_settings(
        output,
        run_config,
        total=config.steps,
        unit="step",
        label=method.name,
        checkpoint_every=config.checkpoint_every,
        export_only=export_only,
    )
    done = run_training(task, settings, progress, cancel, log).done
    network.eval()
    model = ModelFile(
        MODEL_KIND,
        {
            **network_config,
            "training": asdict(config),
            "n_labelled": len(subset),
            "steps_done": done,
            "source": (source_model.config.get("training") if source_model else None),
            "fine_tuned_from": (initial_model.config.get("training") if initial_model else None),
        },
        {"state_dict": network.state_dict()},
    )
    save_model_file(output, model)
    return model
