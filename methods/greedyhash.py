"""GreedyHash: towards fast optimisation for accurate hash coding in CNN (Su, Zhang, Han & Tian, NeurIPS 2018).

The hash layer's output h is binarised in the forward pass, b = sgn(h) (the greedy solution of the
discrete problem), and the gradient passes through the sign unchanged (straight-through: dL/dh =
dL/db). Supervised, the code feeds a classifier (a linear layer without bias, as the authors'
``fc``) trained with cross-entropy, plus the paper's penalty that pulls h to the code,
alpha ||h - sgn(h)||_3^3 (mean over the entries, i.e. mean | |h| - 1 |^3; alpha = 0.1 in the
authors' CIFAR-10 script, ssppp/GreedyHash ``cifar1.py``):

    L = CE(W^T sgn(h), y) + alpha mean(| |h| - 1 |^3)

Codes: sgn(h).
"""
from __future__ import annotations

import torch
from torch import nn

from methods import register
from methods.base import Real
from methods.code_method import CodeLossMethod, soft_target_cross_entropy


class _GreedySign(torch.autograd.Function):
    """sgn in the forward pass, the identity in the backward pass (GreedyHash's hash layer)."""

    @staticmethod
    def forward(ctx, h):
        return torch.sign(h)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output


def greedy_sign(h: torch.Tensor) -> torch.Tensor:
    """sgn(h) whose gradient is passed straight through to h."""
    return _GreedySign.apply(h)


def greedyhash_loss(h: torch.Tensor, classifier: nn.Module, labels: torch.Tensor, alpha: float = 0.1) -> torch.Tensor:
    """Cross-entropy of ``classifier(sgn(h))`` against the labels (each row's labels weighted
    evenly: ordinary cross-entropy for one label) plus ``alpha`` mean(| |h| - 1 |^3)."""
    penalty = (h.abs() - 1.0).abs().pow(3).mean()
    return soft_target_cross_entropy(classifier(greedy_sign(h)), labels) + alpha * penalty


@register("greedyhash")
class GreedyHash(CodeLossMethod):
    """GreedyHash on the shared trainer. ``alpha``: the penalty's weight (0.1, the authors' CIFAR-10
    setting; DeepHash-pytorch uses 1 on ImageNet).

    Deviations, and why: backbone ``compact-cnn`` from scratch with Adam and a cosine schedule (the
    authors fine-tune AlexNet / VGG with SGD at 1e-3); the batch normalisation before the code
    (``head_batchnorm``, :class:`methods.code_method.CodeLossMethod`). Multi-label data: the paper
    has only single-label experiments; here the classifier's target spreads a row's weight evenly
    over its labels (OrthoHash's multi-label cross-entropy), which is the paper's loss for one label.
    """

    beyond_paper = True
    param_rules = {"alpha": Real(0.0, closed_low=True)}

    def __init__(self, nbits: int = 32, random_state: int = 0, alpha: float = 0.1, **kwargs):
        super().__init__(nbits=nbits, random_state=random_state, **kwargs)
        self.alpha = alpha

    def code_extra(self, width, n_classes):
        return nn.Linear(width, max(1, n_classes), bias=False)

    def code_loss(self, code, z, labels, indices, step, extra=None):
        return greedyhash_loss(z, extra, labels, self.alpha)
