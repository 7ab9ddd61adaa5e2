"""Losses of the paper (Fu et al. 2020).  The equations were lost from the available text of the
paper; the forms below are RECONSTRUCTED from its descriptions and are marked as such.

* Eq. 1 (heatmap loss): L_m = 1/(B K) sum_b sum_k ||H_bk - H^_bk||_F^2 -- "Frobenius norm" between
  predicted and Gaussian target heatmaps, averaged over images and landmarks.
* Eq. 2 (total): L = L_m + lambda * L_r.
* NOT in the paper -- auxiliary integral (soft-argmax) coordinate loss, weight ``coordinate_weight``:
  with Eq. 1 alone the heatmaps stayed on the all-zero plateau for the few hundred steps this 2-core
  CPU allows (measured: NME 0.78 on the test split after 200 steps of all-label training); the L1
  error of the soft-argmax of softmax(kappa * H) gives every pixel a gradient towards the landmark
  from the first step and is compatible with Gaussian targets of peak 1.
* Eq. 3 (CTD-CD, reconstructed): the classifier outputs z of source and target are softened with a
  temperature tau, p = softmax(z / tau); the text says the distillation cross-entropy "is replaced" by a
  term that "directly aligns the facial embeddings between instances", so we use the squared Euclidean
  distance between the softened outputs, scaled by tau^2 (Hinton's gradient scaling):
  L_CD = tau^2 / B sum_b ||p_t(b) - p_s(b)||_2^2.
* Eq. 4 (CTD-ED, reconstructed): cosine-similarity loss between the encoder feature maps of target and
  source on the same image, flattened: L_ED = 1/B sum_b (1 - cos(vec E_t(x_b), vec E_s(x_b))).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from LandmarkCoreLib import networks


def heatmap_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 1: squared Frobenius norm per heatmap, mean over images and landmarks."""
    return (predicted - target).square().sum(dim=(-2, -1)).mean()


def classifier_distillation_loss(
    target_logits: torch.Tensor, source_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Eq. 3 (reconstructed): tau^2 * ||softmax(z_t/tau) - softmax(z_s/tau)||^2, mean over the batch."""
    p_t = F.softmax(target_logits / temperature, dim=1)
    p_s = F.softmax(source_logits / temperature, dim=1)
    return temperature**2 * (p_t - p_s).square().sum(dim=1).mean()


def encoder_distillation_loss(target_features: torch.Tensor, source_features: torch.Tensor) -> torch.Tensor:
    """Eq. 4 (reconstructed): 1 - cosine similarity of the flattened encoder feature maps, batch mean."""
    cos = F.cosine_similarity(target_features.flatten(1), source_features.flatten(1), dim=1)
    return (1.0 - cos).mean()


#: kappa of softmax(kappa * H) in the coordinate loss and the soft-argmax decoding
SOFT_ARGMAX_SHARPNESS = 10.0


def soft_argmax(heatmaps: torch.Tensor) -> torch.Tensor:
    """Expected (x, y) in heatmap pixels under softmax(kappa * H) over each heatmap."""
    return networks.soft_argmax(heatmaps, SOFT_ARGMAX_SHARPNESS)


def coordinate_loss(heatmaps: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Mean L1 distance (heatmap pixels) between the soft-argmax of the heatmaps and the true points."""
    return (soft_argmax(heatmaps) - points).abs().sum(-1).mean()
