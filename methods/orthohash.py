"""OrthoHash: one loss for all (Hoe, Ng, Goh, Chan, Chan & Wu, NeurIPS 2021).

Each class has a fixed binary target code c_y in {-1, 1}^K, near-orthogonal to the others
(Bernoulli(0.5) bits, the authors' default codebook ``B``, or Hadamard rows). The loss is a
cross-entropy on cosine similarities with an additive cosine margin m and a scale s:

    L = - log softmax_y (s (cos(v, c_y) - m), s cos(v, c_j) for j != y),   v the code's real outputs

which maximises the cosine between v and its class's binary code, so it also quantises. For a
multi-label item the margin is taken off every label's logit and the target spreads evenly over its
labels (the authors' default multi-label loss, "label smoothing"). The optional quantisation term
is 1 - cos(v, sgn(v)) (their ``quan_type="cs"``), weight 0 by default as theirs. Codes: sgn(v).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from methods import register
from methods.base import Choice, Real
from methods.code_method import CodeLossMethod, soft_target_cross_entropy, targets_per_block
from methods.csq import hash_centres

CODEBOOKS = ("bernoulli", "hadamard")


def orthohash_codebook(n_classes: int, nbits: int, kind: str, rng: np.random.Generator,
                       shuffle_rows: bool = False) -> np.ndarray:
    """``(n_classes, nbits)`` target codes in {-1, 1}: Bernoulli(0.5) bits, drawn again while two
    classes share a code and the width has room for them all (at 8 bits, 10 classes share one in
    about 16 % of draws; at 16 bits and more a redraw is rare, so a flat method's codebook is the
    first draw), or CSQ's Hadamard rows (balanced random centres where those do not fit)."""
    if kind == "hadamard":
        return hash_centres(n_classes, nbits, rng, shuffle_rows=shuffle_rows)
    while True:
        codebook = np.where(rng.random((n_classes, nbits)) < 0.5, -1.0, 1.0)
        if len(np.unique(codebook, axis=0)) == n_classes or 2 ** min(nbits, 62) < n_classes:
            return codebook


def orthohash_loss(v: torch.Tensor, codebook: torch.Tensor, labels: torch.Tensor, scale: float = 8.0,
                   margin: float = 0.2, quantization_weight: float = 0.0) -> torch.Tensor:
    """Cosine-margin cross-entropy of ``v`` ``(n, k)`` against ``codebook`` ``(C, k)`` (margin on every
    label of a row, target spread evenly over them) + ``quantization_weight`` mean(1 - cos(v, sgn v))."""
    cosine = nn.functional.normalize(v, dim=1) @ nn.functional.normalize(codebook, dim=1).T
    logits = scale * (cosine - margin * labels.float())
    loss = soft_target_cross_entropy(logits, labels)
    if quantization_weight:
        loss = loss + quantization_weight * (1.0 - nn.functional.cosine_similarity(v, v.detach().sign(), dim=1)).mean()
    return loss


@register("orthohash")
class OrthoHash(CodeLossMethod):
    """OrthoHash on the shared trainer. ``scale`` s = 8 and ``margin`` m = 0.2 (the authors'
    ``main.py`` defaults; their README runs CIFAR-10 with 0.3), ``codebook`` ``"bernoulli"`` (their
    default ``B``) or ``"hadamard"``, ``quantization_weight`` 0 (their default ``quan``).

    Deviations, and why: backbone ``compact-cnn`` from scratch with Adam and a cosine schedule (the
    authors fine-tune AlexNet with Adam at 1e-4); the head is the shared hash layer with batch
    normalisation without the affine (theirs: a linear layer without bias and a batch normalisation
    with one), so each bit is standardised over the batch instead of learning its own scale and offset.
    Unlike CSQ's (:class:`methods.csq.CSQ`), this loss's optimum stays within reach: it scores the
    direction of v alone, and on free features (no network, 10 classes, its Bernoulli codebook) its
    floor is 0.0292 / 0.0153 / 0.0138 with this head against 0.0286 / 0.0143 / 0.0133 without a batch
    norm or with the affine, at 16 / 32 / 64 bits (the margin keeps it above 0), so the head stays.
    """

    beyond_paper = True
    param_rules = {"scale": Real(0.0), "margin": Real(0.0, 2.0, closed_low=True), "codebook": Choice(CODEBOOKS),
                   "quantization_weight": Real(0.0, closed_low=True)}

    def __init__(self, nbits: int = 32, random_state: int = 0, scale: float = 8.0, margin: float = 0.2,
                 codebook: str = "bernoulli", quantization_weight: float = 0.0, **kwargs):
        super().__init__(nbits=nbits, random_state=random_state, **kwargs)
        self.scale = scale
        self.margin = margin
        self.codebook = codebook
        self.quantization_weight = quantization_weight

    def code_setup(self, labels_train, widths, blocks=None):
        n_classes = max(1, np.asarray(labels_train).shape[1])
        rng = np.random.default_rng(int(self.random_state))

        def draw(block, width):
            return torch.as_tensor(orthohash_codebook(n_classes, width, self.codebook, rng, shuffle_rows=block > 0),
                                   dtype=torch.float32)

        self._codebooks = targets_per_block(widths, blocks, draw)

    def code_loss(self, code, z, labels, indices, step, extra=None):
        codebook = self._codebooks[code]
        if codebook.device != z.device:
            codebook = self._codebooks[code] = codebook.to(z.device)
        return orthohash_loss(z, codebook, labels, self.scale, self.margin, self.quantization_weight)
