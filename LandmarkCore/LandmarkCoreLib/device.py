"""Choice of torch device and CPU threading, in one place."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from .errors import InputError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def select_device(choice: str = "auto") -> torch.device:
    """Return the torch device for ``choice`` ('auto' takes CUDA when available)."""
    if choice not in DEVICE_CHOICES:
        raise InputError("device", f"'{choice}' is not one of {', '.join(DEVICE_CHOICES)}")
    if choice == "cuda" and not torch.cuda.is_available():
        raise InputError("device", "'cuda' was requested but no CUDA GPU is available")
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run a block with ``count`` torch CPU threads (None: leave as is), then restore the previous count.

    Library code must not change the process-wide setting for good: the Slicer application, a test
    run or a notebook share it.
    """
    previous = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def fold_batch_norm(network: torch.nn.Module) -> torch.nn.Module:
    """Fold every BatchNorm2d that directly follows a Conv2d in an ``nn.Sequential`` into that
    convolution, in place, for inference (one layer less per pair; the network must be in eval mode).

    Pairs written as separate attributes (e.g. ResNet's conv1/bn1) are left as they are.
    """
    if network.training:
        raise ValueError("fold_batch_norm needs a network in eval mode (it bakes in the running statistics)")
    for module in network.modules():
        if not isinstance(module, torch.nn.Sequential):
            continue
        for i in range(len(module) - 1):
            conv, norm = module[i], module[i + 1]
            if isinstance(conv, torch.nn.Conv2d) and isinstance(norm, torch.nn.BatchNorm2d):
                module[i] = torch.nn.utils.fusion.fuse_conv_bn_eval(conv, norm)
                module[i + 1] = torch.nn.Identity()
    return network
