"""Shared network blocks: soft-argmax geometry; KneelHourglass shapes, KNEEL's module layout, options."""

from __future__ import annotations

import pytest
import torch
from LandmarkCoreLib.networks import KneelHourglass, soft_argmax


@pytest.mark.parametrize("block", ["hmp", "bottleneck"])
def test_shapes_and_range(block):
    net = KneelHourglass(5, width=4, depth=3, block=block).eval()
    x = torch.randn(2, 1, 64, 96)
    coords = net(x)
    assert coords.shape == (2, 5, 2)
    assert net.heatmaps(x).shape == (2, 5, 16, 24)
    assert torch.all((coords >= 0) & (coords < 1))


def test_soft_argmax_of_a_sharp_peak_is_its_cell():
    heat = torch.full((1, 2, 10, 20), -50.0)
    heat[0, 0, 3, 7] = 50.0
    heat[0, 1, 9, 0] = 50.0
    coords = soft_argmax(heat)
    assert torch.allclose(coords[0, 0], torch.tensor([7.0, 3.0]), atol=1e-5)
    assert torch.allclose(coords[0, 1], torch.tensor([0.0, 9.0]), atol=1e-5)


def test_soft_argmax_sharpness_pulls_towards_the_peak():
    heat = torch.zeros((1, 1, 1, 3))
    heat[0, 0, 0, 2] = 1.0  # weights 1, 1, e at columns 0, 1, 2
    expected = (1 + 2 * torch.e) / (2 + torch.e)
    assert soft_argmax(heat)[0, 0, 0] == pytest.approx(expected, abs=1e-6)
    sharp = (1 + 2 * torch.e**10) / (2 + torch.e**10)
    assert soft_argmax(heat, sharpness=10.0)[0, 0, 0] == pytest.approx(sharp, abs=1e-5)


def test_hourglass_coordinates_are_the_heatmap_soft_argmax_over_its_size():
    torch.manual_seed(0)
    net = KneelHourglass(3, width=4, depth=2).eval()
    x = torch.randn(1, 1, 32, 48)
    heat = net.heatmaps(x)
    expected = soft_argmax(heat) / torch.tensor([12.0, 8.0])
    assert torch.allclose(net(x), expected, atol=1e-6)


def test_module_names_follow_kneel():
    keys = set(KneelHourglass(16, width=8, depth=2).state_dict())
    for key in [
        "layer1.0.weight",
        "layer1.3.scale1.0.weight",
        "layer2.2.skip.0.weight",
        "hourglass.lower4.lower4.scale3.1.running_mean",
        "hourglass.upper3.skip.1.weight",
        "mixer.1.0.weight",
        "mixer.3.1.bias",
        "out_block.0.weight",
    ]:
        assert key in keys, key
    # KNEEL's "1x1" blocks are 3x3 convolutions; keeping that is what lets their weights load
    assert KneelHourglass(16, width=8, depth=2).state_dict()["mixer.1.0.weight"].shape == (64, 64, 3, 3)


def test_bilinear_upsampling_changes_the_output_only():
    torch.manual_seed(0)
    nearest = KneelHourglass(3, width=4, depth=2).eval()
    bilinear = KneelHourglass(3, width=4, depth=2, upsample="bilinear").eval()
    bilinear.load_state_dict(nearest.state_dict())
    x = torch.randn(1, 1, 32, 32)
    assert not torch.allclose(nearest(x), bilinear(x))


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="block"):
        KneelHourglass(2, block="resnet")
    with pytest.raises(ValueError, match="upsample"):
        KneelHourglass(2, upsample="cubic")
