"""A classifier as a hashing baseline (Sablayrolles, Douze, Usunier & Jégou, "How should we evaluate
supervised hashing?", ICASSP 2017).

The shared backbone with one linear layer of class logits, trained with cross-entropy (binary
cross-entropy per class where items have several labels). An item's code at B bits is the codeword
of its predicted class: CSQ's well-separated centres of width B (Hadamard rows where they fit,
balanced random centres otherwise, :func:`methods.csq.hash_centres`). Multi-label: every class whose
probability passes 0.5 (the most probable one where none does) is predicted, and the code is the sign
of the mean of their codewords, ties from one seeded vector (CSQ's multi-label centre).

When queries and database come from the training classes, MAP mostly measures classification: this
baseline says how much of a hashing method's MAP a classifier gets alone. Its ties are total (every
item predicted in one class sits at distance 0 from the others), so read it by tie-aware MAP.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from methods import register
from methods.code_method import label_count, soft_target_cross_entropy
from methods.csq import centres_and_tie_break, item_centres
from methods.deep_method import DeepHashMethod


@register("classifier")
class Classifier(DeepHashMethod):
    """The classifier baseline on the shared trainer (see the module docstring); the codewords and
    the multi-label tie vector are drawn from ``random_state``."""

    beyond_paper = True

    def fit(self, X, y=None):
        # the head and the codewords need the class count; the codewords are rebuilt from the seed (a
        # cached model holds only weights), so encoding gives the same codes after a cache load
        self.n_classes_ = label_count(y)
        rng = np.random.default_rng(int(self.random_state))
        self.codewords_, self.tie_break_ = centres_and_tie_break(max(1, self.n_classes_), self.nbits, rng)
        labels = None if y is None else np.asarray(y)
        self.multilabel_ = bool(labels is not None and labels.ndim == 2 and (labels.sum(axis=1) > 1).any())
        return super().fit(X, y)

    def build_head(self, in_features):
        return nn.Linear(in_features, max(1, getattr(self, "n_classes_", 1)))

    def loss(self, outputs, labels, indices, step):
        if self.multilabel_:
            return nn.functional.binary_cross_entropy_with_logits(outputs, labels.float())
        return soft_target_cross_entropy(outputs, labels)

    def predicted_labels(self, logits: torch.Tensor) -> torch.Tensor:
        """Multi-hot predictions: the most probable class, or every class past 0.5 (multi-label)."""
        top = nn.functional.one_hot(logits.argmax(dim=1), logits.shape[1]).bool()
        if not self.multilabel_:
            return top
        passed = logits > 0  # sigmoid > 0.5
        return torch.where(passed.any(dim=1, keepdim=True), passed, top)

    def codes_from_outputs(self, outputs) -> torch.Tensor:
        codewords, tie_break = self.codewords_.to(outputs.device), self.tie_break_.to(outputs.device)
        return item_centres(self.predicted_labels(outputs), codewords, tie_break)
