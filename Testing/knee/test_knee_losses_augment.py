"""Losses and augmentation: the wing formula, crops that carry their landmarks along, mixup."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from KneeLandmarksLib.augment import AugmentConfig, draw_geometry, mixup_loss, textural
from KneeLandmarksLib.data import apply_homography, crop_transform, sample_crops
from KneeLandmarksLib.losses import WingLoss, make_loss


def test_wing_loss_matches_the_formula_and_is_continuous():
    wing = WingLoss(15.0, 3.0)
    small = wing(torch.tensor([[[2.0, 0.0]]]), torch.zeros(1, 1, 2))
    assert small.item() == pytest.approx((15 * math.log(1 + 2 / 3)) / 2)
    just_below = wing(torch.tensor([[[15.0 - 1e-4]]]), torch.zeros(1, 1, 1)).item()
    just_above = wing(torch.tensor([[[15.0 + 1e-4]]]), torch.zeros(1, 1, 1)).item()
    assert just_above == pytest.approx(just_below, abs=1e-3)


@pytest.mark.parametrize("name,expected", [("l1", 2.0), ("l2", 4.0), ("elastic", 6.0)])
def test_other_losses(name, expected):
    assert make_loss(name)(torch.full((1, 1, 2), 2.0), torch.zeros(1, 1, 2)).item() == pytest.approx(expected)


def test_augmented_crop_keeps_a_blob_on_its_landmark():
    rows, cols = np.mgrid[0:120, 0:100]
    point = np.array([[63.0, 41.0]])
    array = np.exp(-((cols - point[0, 0]) ** 2 + (rows - point[0, 1]) ** 2) / 6.0).astype(np.float32)
    rng = np.random.default_rng(3)
    config = AugmentConfig(rotation_deg=25, zoom_range=0.2, perspective=0.1)
    for _ in range(5):
        draw = draw_geometry(rng, config)
        matrix = crop_transform(
            np.array([55.0, 50.0]) + draw.shift,
            (64, 48),
            draw.zoom,
            draw.angle,
            draw.perspective,
            mirror=bool(rng.integers(2)),
        )
        crop = sample_crops([array], [matrix], (64, 48))[0, 0].numpy()
        target = apply_homography(np.linalg.inv(matrix), point)[0]
        peak = np.unravel_index(np.argmax(crop), crop.shape)
        assert np.hypot(peak[1] - target[0], peak[0] - target[1]) < 1.5


def test_textural_augmentation_stays_in_unit_range():
    crop = torch.rand(1, 40, 40) * 1000
    always = AugmentConfig(p_gamma=1, p_noise=1, p_salt_pepper=1, p_blur=1)
    out = textural(crop, np.random.default_rng(0), always)
    assert out.shape == crop.shape and out.min() >= 0 and out.max() <= 1


def test_mixup_loss_weights_the_two_terms():
    class Echo(torch.nn.Module):  # predicts its input's mean per sample as every coordinate
        def forward(self, x):
            return x.mean(dim=(1, 2, 3)).reshape(-1, 1, 1).expand(-1, 1, 2)

    inputs = torch.tensor([0.0, 1.0, 3.0]).reshape(3, 1, 1, 1).expand(3, 1, 4, 4)
    targets = torch.tensor([0.0, 1.0, 3.0]).reshape(3, 1, 1).expand(3, 1, 2)
    torch.manual_seed(0)
    lam = float(torch.distributions.Beta(0.5, 0.5).sample())
    perm = torch.randperm(3, generator=torch.Generator().manual_seed(0))
    # the clean term is 0 for Echo; the mixed one is |lam x + (1 - lam) x[perm] - x[perm]|
    expected = (1 - lam) * (lam * (inputs[:, 0, 0, 0] - inputs[perm, 0, 0, 0]).abs()).mean()
    torch.manual_seed(0)
    loss = mixup_loss(
        Echo(), torch.nn.functional.l1_loss, inputs, targets, 0.5, torch.Generator().manual_seed(0)
    )
    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)
    assert expected.item() > 0
