"""DNNH: simultaneous feature learning and hash coding (Lai, Pan, Liu & Yan, CVPR 2015).

- Triplet ranking hinge loss (Sec. 3.2) on relaxed codes b in [0, 1]^q:
      l(I, I+, I-) = max(0, 1 - (||b - b-||^2 - ||b - b+||^2))
  (I, I+ share a label, I, I- do not); every such triplet inside a batch is used.
- Divide-and-encode module (Sec. 3.3): the shared feature vector is divided into q slices, one per
  bit; slice j is mapped by its own fully connected unit and a sigmoid to b_j, so each bit sees
  only its slice and the bits are less redundant.
- Test time: bit j = 1 where b_j > 0.5 (the codes are packed from sigmoid - 0.5).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from deep.trainer import similarity_matrix
from methods import register
from methods.base import Flag, Real
from methods.deep_method import DeepHashMethod


def triplet_ranking_loss(b: torch.Tensor, s: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Mean of max(0, margin - (||b_i - b_k||^2 - ||b_i - b_j||^2)) over the triplets (i, j, k) of
    the batch with s_ij = 1 (j != i) and s_ik = 0. Zero when the batch has no triplet."""
    sq = (b * b).sum(1)
    dist = (sq[:, None] + sq[None, :] - 2 * b @ b.T).clamp(min=0)
    positive = (s > 0) & ~torch.eye(len(b), dtype=torch.bool, device=b.device)
    negative = s <= 0
    valid = positive[:, :, None] & negative[:, None, :]  # (anchor i, positive j, negative k)
    if not valid.any():
        return b.sum() * 0.0
    hinge = (margin - (dist[:, None, :] - dist[:, :, None])).clamp(min=0)
    return hinge[valid].mean()


class DivideAndEncode(nn.Module):
    """Feature split into ``nbits`` contiguous slices (sizes differ by at most one); slice j feeds
    one linear unit; the output is the pre-sigmoid value (sigmoid gives b_j)."""

    def __init__(self, in_features: int, nbits: int):
        super().__init__()
        if in_features < nbits:
            raise ValueError(f"divide-and-encode needs at least one feature per bit: {in_features} features, "
                             f"{nbits} bits")
        self.linear = nn.Linear(in_features, nbits)
        mask = torch.zeros(nbits, in_features)
        for j, part in enumerate(np.array_split(np.arange(in_features), nbits)):
            mask[j, part] = 1.0
        self.register_buffer("mask", mask)
        with torch.no_grad():
            self.linear.weight.mul_(mask)

    def forward(self, features):
        return nn.functional.linear(features, self.linear.weight * self.mask, self.linear.bias)


@register("dnnh")
class DNNH(DeepHashMethod):
    """DNNH on the shared trainer. ``margin``: the hinge's margin (1 in the paper).

    Deviations from the paper, and why:

    - Backbone: the paper's network-in-network convolutional layers are replaced by the shared
      ``compact-cnn`` (same idea, smaller, trained from scratch); the divide-and-encode module
      sits on its 256-d feature layer, so each bit gets 256 / nbits features (4 at 64 bits)
      rather than a fixed slice length of the paper's architecture.
    - Triplets: all valid triplets inside each batch (the paper samples triplets from the
      training set offline); the loss is their mean.
    - The paper's piece-wise threshold function (outputs below 0.5 - epsilon set to 0, above
      0.5 + epsilon to 1, to make them binary) is left out: its zero gradient outside the band
      stalls training from scratch; thresholding at 0.5 at test time is kept.
    - Optimiser: Adam with a cosine schedule, the divide-and-encode layer at 10x.
    - ``head_batchnorm=True``: each bit's pre-sigmoid value is batch-normalised (per unit, no
      affine, so a bit still sees only its slice). Trained from scratch without it the outputs
      stay near 0.5 and the codes barely learn (measured on digits, 32 bits, 8 epochs: validation
      MAP 0.27 without, 0.69 with; a larger margin or learning rate did not help).
      ``head_batchnorm=False`` is the paper's module.
    """

    paper_table1 = True

    param_rules = {"margin": Real(0.0), "head_batchnorm": Flag()}

    def __init__(self, nbits: int = 32, random_state: int = 0, margin: float = 1.0, head_batchnorm: bool = True,
                 **kwargs):
        super().__init__(nbits=nbits, random_state=random_state, **kwargs)
        self.margin = margin
        self.head_batchnorm = head_batchnorm

    def build_head(self, in_features):
        head = DivideAndEncode(in_features, self.nbits)
        return nn.Sequential(head, nn.BatchNorm1d(self.nbits, affine=False)) if self.head_batchnorm else head

    def loss(self, outputs, labels, indices, step):
        return triplet_ranking_loss(torch.sigmoid(outputs), similarity_matrix(labels), self.margin)

    def codes_from_outputs(self, outputs):
        return torch.sigmoid(outputs) - 0.5
