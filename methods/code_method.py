"""``CodeLossMethod``: the base of the deep methods whose whole loss is a loss on one code.

DPSH, GreedyHash, CSQ and OrthoHash (the methods beyond the HDHash paper) implement three hooks of
:class:`methods.deep_method.DeepHashMethod`: ``code_setup(labels_train, widths)`` (state per code:
hash centres, a codebook, a memory of outputs), ``code_extra(width, n_classes)`` (trainable parts
besides the hash layer: GreedyHash's classifier) and ``code_loss(code, z, labels, indices, step,
extra)``. This base turns them into a one-code method (one hash layer, ``nbits`` wide); HDHash
(``level_loss=<name>``) calls the same hooks once per level, so each loss is written once.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from methods.base import Choice
from methods.deep_method import DeepHashMethod
from methods.hashnet import HEAD_NORMS, hash_head


def label_count(y) -> int:
    """Columns of a multi-hot label matrix (0 when there is none; ``fit`` then says labels are needed)."""
    y = None if y is None else np.asarray(y)
    return int(y.shape[1]) if y is not None and y.ndim == 2 else 0


def soft_target_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of softmax(logits) against each row's labels spread evenly over its classes:
    ordinary cross-entropy for one label per row, OrthoHash's "label smoothing" multi-label loss
    (each of k labels gets 1/k) otherwise. A row without labels contributes 0."""
    labels = labels.float()
    target = labels / labels.sum(dim=1, keepdim=True).clamp(min=1.0)
    return -(target * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()


def targets_per_block(widths, blocks, draw_block) -> list:
    """Each code's class targets as the concatenation of its blocks' (columns), each block's drawn
    once by ``draw_block(block, width)`` in order of first use, so the targets of HDHash's levels
    1..i are a prefix of those of levels 1..i+1 (targets drawn per code width disagreed on 20-61 %
    of the shared bits). ``blocks`` None: every code its own block. ``draw_block`` returns a tensor
    ``(rows, width)`` or a tuple of such tensors (concatenated part by part)."""
    blocks = blocks if blocks is not None else tuple(((i, w),) for i, w in enumerate(widths))
    if [sum(w for _, w in code) for code in blocks] != [int(w) for w in widths]:
        raise ValueError(f"code blocks {blocks} do not add up to the code widths {tuple(widths)}")
    drawn = {}
    for code in blocks:
        for block, width in code:
            if block not in drawn:
                drawn[block] = draw_block(block, width)
    targets = []
    for code in blocks:
        parts = [drawn[block] for block, _ in code]
        if isinstance(parts[0], tuple):
            targets.append(tuple(torch.cat(column, dim=-1) for column in zip(*parts)))
        else:
            targets.append(torch.cat(parts, dim=-1))
    return targets


class CodeHead(nn.Module):
    """A hash layer (its forward is the code) and, apart, the parts the loss alone calls (``extra``)."""

    def __init__(self, hash_layer: nn.Module, extra: nn.Module | None = None):
        super().__init__()
        self.hash_layer = hash_layer
        if extra is not None:  # registered only when present, so its weights are trained and cached
            self.extra = extra

    def forward(self, features):
        return self.hash_layer(features)


class CodeLossMethod(DeepHashMethod):
    """A deep method made of one hash layer and a loss on its code (see the module docstring).

    ``head_batchnorm=True``: the hash layer's outputs are batch-normalised (no affine) before the
    loss, as HashNet's, DHN's and DNNH's here: on a backbone trained from scratch this keeps the
    outputs from collapsing to one code (measured for HashNet and DHN, see their docstrings), and
    the deep methods compare on equal terms. OrthoHash's own head has this layer (with an affine).
    """

    param_rules = {"head_batchnorm": Choice(HEAD_NORMS)}

    def __init__(self, nbits: int = 32, random_state: int = 0, head_batchnorm: bool = True, **kwargs):
        super().__init__(nbits=nbits, random_state=random_state, **kwargs)
        self.head_batchnorm = head_batchnorm

    def fit(self, X, y=None):
        # the head is built before the trainer calls prepare; a classifier on the code needs the class count
        self.n_classes_ = label_count(y)
        return super().fit(X, y)

    def build_head(self, in_features):
        head = CodeHead(hash_head(in_features, self.nbits, self.head_batchnorm),
                        self.code_extra(self.nbits, getattr(self, "n_classes_", 0)))
        self._head = head  # the loss calls head.extra (the trainer hands the loss the outputs only)
        return head

    def prepare(self, labels_train):
        self.code_setup(labels_train, (self.nbits,))

    def loss(self, outputs, labels, indices, step):
        return self.code_loss(0, outputs, labels, indices, step, getattr(self._head, "extra", None))
