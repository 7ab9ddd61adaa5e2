"""Choice of torch device and CPU threading, in one place."""

from __future__ import annotations

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
