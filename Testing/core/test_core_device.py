"""Device choice and the scoped torch thread count."""

from __future__ import annotations

import pytest
import torch
from LandmarkCoreLib.device import fold_batch_norm, select_device, torch_threads
from LandmarkCoreLib.errors import InputError


def test_torch_threads_is_restored_even_after_an_error():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError), torch_threads(1):
        assert torch.get_num_threads() == 1
        raise RuntimeError("training failed")
    assert torch.get_num_threads() == before


def test_device_choice():
    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(InputError, match="device: 'tpu'"):
        select_device("tpu")


def _trained_statistics(network: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial batch-norm running statistics and affine terms, as after training."""
    generator = torch.Generator().manual_seed(0)
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator))
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            module.weight.data.copy_(torch.randn(n, generator=generator))
            module.bias.data.copy_(torch.randn(n, generator=generator))
    return network.eval()


def test_folding_batch_norm_keeps_the_outputs_and_removes_every_sequential_norm():
    nn = torch.nn
    block = nn.Sequential(nn.Conv2d(4, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU())
    network = _trained_statistics(
        nn.Sequential(nn.Conv2d(1, 4, 7, stride=2, padding=3), nn.BatchNorm2d(4), nn.ReLU(), block)
    )
    x = torch.randn(2, 1, 64, 48, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = network(x)
        folded = fold_batch_norm(network)
        actual = folded(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert torch.allclose(actual, expected, atol=1e-4, rtol=1e-4), (actual - expected).abs().max()


def test_folding_batch_norm_refuses_a_network_in_training_mode():
    with pytest.raises(ValueError, match="eval mode"):
        fold_batch_norm(torch.nn.Sequential(torch.nn.Conv2d(1, 1, 3), torch.nn.BatchNorm2d(1)))
