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
