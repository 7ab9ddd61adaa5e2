"""Storing torch state dicts in model files.

LandmarkCoreLib.modelfile cannot checksum 0-dimensional tensors (BatchNorm's ``num_batches_tracked``,
Adam's ``step``), so they are stored with shape (1,) and given back their shape when loaded.
"""

from __future__ import annotations

from typing import Any

import torch


def without_scalars(node: Any) -> Any:
    """A copy of a nested structure in which every 0-d tensor has shape (1,)."""
    if isinstance(node, torch.Tensor):
        return node.detach().cpu().reshape(1) if node.dim() == 0 else node.detach().cpu()
    if isinstance(node, dict):
        return {k: without_scalars(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [without_scalars(v) for v in node]
    return node


def shaped_like(state: dict[str, torch.Tensor], like: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state``'s tensors reshaped to the shapes of ``like`` (a module's own state dict)."""
    return {k: v.reshape(like[k].shape) if k in like else v for k, v in state.items()}


def optimiser_state(stored: dict[str, Any]) -> dict[str, Any]:
    """An optimiser state dict read back from a model file: 'step' scalars restored, int keys restored."""
    state = {
        int(k): {name: (v.reshape(()) if name == "step" else v) for name, v in s.items()}
        for k, s in stored["state"].items()
    }
    return {"state": state, "param_groups": stored["param_groups"]}
