"""Training-time augmentation (KNEEL section 3.3): geometric (affine + perspective, applied while cropping),
textural (gamma, salt-and-pepper, median/Gaussian blur, Gaussian noise), cutout, target jitter, mixup."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from LandmarkCoreLib.settings import fraction_setting, setting


@dataclass
class AugmentConfig:
    """The augmentation settings of a training stage (part of its :class:`~.train_config.TrainConfig`)."""

    rotation_deg: float = setting(10.0, minimum=0.0, maximum=180.0, help="rotation in [-r, r] (degrees)")
    zoom_range: float = setting(0.1, minimum=0.0, maximum=0.9, help="zoom in [1 - r, 1 + r]")
    perspective: float = setting(
        0.05, minimum=0.0, maximum=0.5, help="homographic term, fraction of the crop per side"
    )
    shift_mm: float = setting(
        6.0, minimum=0.0, maximum=1000.0, help="crop centre jitter (mm; the previous stage's error)"
    )
    p_gamma: float = fraction_setting(0.5, help="gamma probability")
    gamma_range: float = setting(0.3, minimum=0.0, maximum=0.9, help="gamma in [1 - r, 1 + r]")
    p_noise: float = fraction_setting(0.3, help="Gaussian noise probability")
    noise_std: float = setting(0.05, minimum=0.0, maximum=10.0, help="noise standard deviation")
    p_salt_pepper: float = fraction_setting(0.2, help="salt-and-pepper probability")
    salt_pepper_fraction: float = fraction_setting(0.01, help="fraction of pixels set")
    #: half median 3x3, half Gaussian with sigma ~ U(0.3, 1)
    p_blur: float = fraction_setting(0.3, help="blur probability")
    p_cutout: float = fraction_setting(0.5, flag="--cutout", help="cutout probability")
    cutout_fraction: float = fraction_setting(
        0.1, help="side of the cut square as a fraction of the crop side"
    )
    target_jitter_px: float = setting(
        0.0, minimum=0.0, maximum=1000.0, flag="--target-jitter", help="target jitter (input pixels)"
    )
    mixup_alpha: float = setting(
        0.75, minimum=-1.0, maximum=100.0, flag="--mixup-alpha", help="Beta(alpha, alpha); <= 0: no mixup"
    )

    @classmethod
    def none(cls) -> AugmentConfig:
        """No augmentation at all (evaluation crops)."""
        return cls(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


@dataclass
class GeometryDraw:
    zoom: float
    angle: float
    perspective: tuple[float, float]
    shift: np.ndarray  # (2,) in output pixels' physical size, mm


def draw_geometry(rng: np.random.Generator, config: AugmentConfig) -> GeometryDraw:
    return GeometryDraw(
        zoom=float(rng.uniform(1 - config.zoom_range, 1 + config.zoom_range)),
        angle=float(np.deg2rad(rng.uniform(-config.rotation_deg, config.rotation_deg))),
        perspective=tuple(rng.uniform(-config.perspective, config.perspective, 2)),
        shift=rng.uniform(-config.shift_mm, config.shift_mm, 2),
    )


def _to_unit_range(crop: torch.Tensor) -> torch.Tensor:
    low, high = crop.min(), crop.max()
    return (crop - low) / (high - low).clamp_min(1e-6)


def _median3(crop: torch.Tensor) -> torch.Tensor:
    patches = F.unfold(F.pad(crop[None], (1, 1, 1, 1), mode="replicate"), kernel_size=3)
    return patches.median(dim=1).values.reshape(crop.shape)


def _gaussian_blur(crop: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(round(2.5 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=crop.dtype)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    padded = F.pad(crop[None], (radius, radius, radius, radius), mode="replicate")
    out = F.conv2d(padded, kernel.reshape(1, 1, 1, -1))
    return F.conv2d(out, kernel.reshape(1, 1, -1, 1))[0]


def textural(crop: torch.Tensor, rng: np.random.Generator, config: AugmentConfig) -> torch.Tensor:
    """Intensity augmentation of one crop (1, h, w); output in [0, 1]."""
    crop = _to_unit_range(crop)
    if rng.random() < config.p_gamma:
        crop = crop.pow(float(rng.uniform(1 - config.gamma_range, 1 + config.gamma_range)))
    if rng.random() < config.p_blur:
        crop = _median3(crop) if rng.random() < 0.5 else _gaussian_blur(crop, float(rng.uniform(0.3, 1.0)))
    if rng.random() < config.p_noise:
        generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
        crop = crop + config.noise_std * torch.randn(crop.shape, generator=generator)
    if rng.random() < config.p_salt_pepper:
        n = crop.numel()
        idx = torch.from_numpy(rng.choice(n, int(n * config.salt_pepper_fraction), replace=False))
        values = torch.from_numpy(rng.integers(0, 2, idx.numel()).astype(np.float32))
        crop = crop.flatten().index_copy(0, idx, values).reshape(crop.shape)
    return crop.clamp(0, 1)


def cutout(crop: torch.Tensor, rng: np.random.Generator, config: AugmentConfig) -> torch.Tensor:
    """Blank one random square (after normalisation: set to the mean, 0)."""
    if rng.random() >= config.p_cutout:
        return crop
    _, h, w = crop.shape
    side = max(1, int(config.cutout_fraction * min(h, w)))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    crop = crop.clone()
    crop[:, y : y + side, x : x + side] = 0.0
    return crop


def jitter_targets(targets: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    if config.target_jitter_px <= 0:
        return targets
    return targets + rng.uniform(-config.target_jitter_px, config.target_jitter_px, targets.shape)


def mixup_loss(
    model, criterion, inputs: torch.Tensor, targets: torch.Tensor, alpha: float, generator: torch.Generator
) -> torch.Tensor:
    """KNEEL's mixup: lambda ~ Beta(alpha, alpha),
    loss = lambda * L(f(x), y) + (1 - lambda) * L(f(x'), y[perm]) with x' = lambda x + (1 - lambda) x[perm]
    (the second term pulls the mixed image to the partner's landmarks, as deep-pipeline's ``mixup_pass``)."""
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    perm = torch.randperm(inputs.shape[0], generator=generator)
    mixed = lam * inputs + (1 - lam) * inputs[perm]
    outputs = model(torch.cat([inputs, mixed], 0))
    n = inputs.shape[0]
    return lam * criterion(outputs[:n], targets) + (1 - lam) * criterion(outputs[n:], targets[perm])
