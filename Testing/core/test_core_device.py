"""Device choice and the scoped torch thread count."""

from __future__ import annotations

import pytest
import torch
from LandmarkCoreLib.device import select_device, torch_threads
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
