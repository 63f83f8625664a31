"""DHN: deep hashing network (Zhu, Long, Wang & Cao, AAAI 2016).

Loss (eq. 6): pairwise cross-entropy on the inner product of the tanh hash layer's outputs z plus
the smooth quantisation loss that pulls |z| to 1 (eq. 7, log cosh, the pseudo-Huber-like surrogate
of | |z| - 1 |):

    C = sum_{s_ij} (log(1 + exp(alpha <z_i, z_j>)) - alpha s_ij <z_i, z_j>)
        + lambda sum_i sum_k log cosh(|z_ik| - 1)

with alpha = 1/2 (the paper's theta_ij = <z_i, z_j> / 2) and no class balance (HashNet added it).
Codes: sgn(z).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from deep.trainer import similarity_matrix
from methods import register
from methods.base import Flag, Real
from methods.deep_method import DeepHashMethod
from methods.hashnet import LinearHashHead, hashnet_loss


def log_cosh(x: torch.Tensor) -> torch.Tensor:
    """log cosh(x), computed stably as |x| + log(1 + exp(-2|x|)) - log 2."""
    x = x.abs()
    return x + nn.functional.softplus(-2.0 * x) - math.log(2.0)


def dhn_quantization_loss(z: torch.Tensor) -> torch.Tensor:
    """sum_k log cosh(|z_ik| - 1), averaged over the items i (DHN eq. 7)."""
    return log_cosh(z.abs() - 1.0).sum(dim=1).mean()


def dhn_loss(z: torch.Tensor, s: torch.Tensor, alpha: float = 0.5, quantization_weight: float = 0.1) -> torch.Tensor:
    """Pairwise cross-entropy (mean over the off-diagonal pairs, unweighted) + lambda x the
    per-item quantisation loss."""
    return hashnet_loss(z, s, alpha, balanced=False) + quantization_weight * dhn_quantization_loss(z)


class TanhHashHead(nn.Module):
    """fch: a linear layer and tanh; ``batchnorm`` centres and scales each pre-activation over the
    batch first (no learned affine; running statistics at test time)."""

    def __init__(self, in_features: int, nbits: int, batchnorm: bool = True):
        super().__init__()
        self.fc = LinearHashHead(in_features, nbits)
        self.norm = nn.BatchNorm1d(nbits, affine=False) if batchnorm else nn.Identity()

    def forward(self, features):
        return torch.tanh(self.norm(self.fc(features)))


@register("dhn")
class DHN(DeepHashMethod):
    """DHN on the shared trainer. ``alpha``: scale of the inner product in the sigmoid (1/2 in the
    paper); ``quantization_weight``: lambda.

    Deviations from the paper, and why:

    - Backbone: ``compact-cnn`` from scratch by default (the paper fine-tunes AlexNet, which
      needs ImageNet weights and 224x224 inputs); ``backbone="alexnet"`` is available.
    - Normalisation: the pairwise term is averaged over the pairs of a batch and the quantisation
      term over its items (the paper writes sums), so lambda does not depend on the batch size;
      lambda = 0.1 here (the paper chooses lambda by cross-validation and reports no single value).
    - Optimiser: Adam with a cosine schedule (from-scratch training), hash layer at 10x as in the paper.
    - ``head_batchnorm=True``: a batch normalisation (no affine) before the tanh. Trained from
      scratch without it, the outputs collapse to ~0 and every code is the same (measured on
      digits, 32 bits: validation MAP 0.108 = chance, with or without class balance, lambda 0 or
      0.1, 10x or 1x head rate; with it 0.61 after 8 epochs); the paper's pretrained AlexNet
      features do not start in that state. ``head_batchnorm=False`` is the paper's layer.
    """

    paper_table1 = True

    param_rules = {"alpha": Real(0.0), "quantization_weight": Real(0.0, closed_low=True), "head_batchnorm": Flag()}

    def __init__(self, nbits: int = 32, random_state: int = 0, alpha: float = 0.5,
                 quantization_weight: float = 0.1, head_batchnorm: bool = True, **kwargs):
        super().__init__(nbits=nbits, random_state=random_state, **kwargs)
        self.alpha = alpha
        self.quantization_weight = quantization_weight
        self.head_batchnorm = head_batchnorm

    def build_head(self, in_features):
        return TanhHashHead(in_features, self.nbits, self.head_batchnorm)

    def loss(self, outputs, labels, indices, step):
        return dhn_loss(outputs, similarity_matrix(labels), self.alpha, self.quantization_weight)
