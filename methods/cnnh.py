"""CNNH: supervised hashing via image representation learning (Xia, Pan, Lai, Liu & Yan, AAAI 2014).

Stage 1 (Sec. 3.1): approximate target codes H in {-1, 1}^{n x q} for the training images from the
similarity matrix S (s_ij = 1 if images i, j share a label, else -1):

    min_H || S - (1/q) H H^T ||_F^2,  relaxed to H in [-1, 1]^{n x q}, solved by coordinate descent
    with Newton directions, then binarised (H = sgn).

Stage 2 (Sec. 3.2): a convolutional network is trained to regress the codes (squared loss); at
test time the codes are the signs of its outputs.
"""
from __future__ import annotations

import numpy as np
import torch

from methods import register
from methods.base import Int
from methods.deep_method import DeepHashMethod
from methods.hashnet import LinearHashHead


class _Similarity:
    """S in {-1, 1} as products ``S @ v``: factored through the labels when every item has
    exactly one label (S = 2 Y Y^T - 1), a dense matrix otherwise."""

    def __init__(self, labels: np.ndarray):
        self.Y = np.asarray(labels, dtype=np.float64)
        self.single = bool(np.all(self.Y.sum(1) == 1))
        if not self.single:
            self.S = np.where(self.Y @ self.Y.T > 0, 1.0, -1.0).astype(np.float32)

    def dot(self, v: np.ndarray) -> np.ndarray:
        if self.single:
            return 2.0 * self.Y @ (self.Y.T @ v) - v.sum(axis=0)
        return (self.S @ v.astype(np.float32)).astype(np.float64)

    def frobenius_sq(self) -> float:
        return float(len(self.Y) ** 2)  # every entry is +-1

    def trace_form(self, H: np.ndarray) -> float:
        """tr(H^T S H)."""
        return float(np.sum(H * self.dot(H)))


def cnnh_objective(H: np.ndarray, S: _Similarity) -> float:
    """|| H H^T - q S ||_F^2 (q = H's columns), without forming an n x n matrix."""
    q = H.shape[1]
    gram = H.T @ H
    return float(np.sum(gram * gram) - 2 * q * S.trace_form(H) + q * q * S.frobenius_sq())


def learn_target_codes(labels: np.ndarray, nbits: int, n_sweeps: int = 10, rng=None):
    """Stage 1: H in [-1, 1]^{n x nbits} minimising ||H H^T - q S||^2 by coordinate descent.

    The coordinates are updated a column (bit) at a time: Newton steps for all entries of the
    column from the diagonal of the Hessian, clipped to [-1, 1], with step halving until the
    objective decreases (so it never increases). Returns (H binarised to {-1, 1}, objective per sweep).
    """
    rng = np.random.default_rng(rng)
    S = _Similarity(labels)
    n, q = len(S.Y), nbits
    H = rng.uniform(-1.0, 1.0, (n, q))
    history = [cnnh_objective(H, S)]
    for _ in range(n_sweeps):
        for j in rng.permutation(q):
            h = H[:, j].copy()
            row_sq = np.sum(H * H, axis=1)
            Rh = H @ (H.T @ h) - q * S.dot(h)  # R = H H^T - q S
            grad = 4.0 * Rh
            R_diag = row_sq - q  # S_ii = 1
            hess = 4.0 * (h @ h + h * h + R_diag)
            step = -grad / np.maximum(hess, 1e-6)
            hRh = h @ Rh
            t = 1.0
            for _ in range(8):
                a = np.clip(h + t * step, -1.0, 1.0)
                Ra = H @ (H.T @ a) - q * S.dot(a)
                # ||R + a a^T - h h^T||^2 - ||R||^2
                change = 2.0 * (a @ Ra - hRh) + (a @ a) ** 2 - 2.0 * (a @ h) ** 2 + (h @ h) ** 2
                if change < 0:
                    H[:, j] = a
                    break
                t *= 0.5
        history.append(cnnh_objective(H, S))
    return np.where(H >= 0, 1.0, -1.0), history


@register("cnnh")
class CNNH(DeepHashMethod):
    """CNNH on the shared trainer. ``stage1_sweeps``: coordinate-descent sweeps over all bits.

    Deviations from the paper, and why:

    - Stage 1 updates one column (bit) of H at a time, all its entries together (diagonal Newton
      step, clipped, step halving until the objective decreases), instead of one entry at a time
      in random order: n * q sequential scalar updates are slow in Python (2.9 M for 45,000 x 64),
      while the column update is a few matrix-vector products and still never increases the
      objective.
    - Stage 2 uses the shared ``compact-cnn`` (the paper's network is a similar small CNN for
      32x32 inputs) with a linear output layer and a squared loss to the binary targets; CNNH+'s
      extra class-label outputs are not used.
    - Optimiser: Adam with a cosine schedule, the output layer at 10x.
    """

    paper_table1 = True

    param_rules = {"stage1_sweeps": Int(1)}

    def __init__(self, nbits: int = 32, random_state: int = 0, stage1_sweeps: int = 10, **kwargs):
        super().__init__(nbits=nbits, random_state=random_state, **kwargs)
        self.stage1_sweeps = stage1_sweeps

    def prepare(self, labels_train):
        codes, history = learn_target_codes(labels_train, self.nbits, self.stage1_sweeps,
                                            rng=np.random.default_rng(self.random_state))
        self.stage1_objective_ = history
        self._targets = torch.as_tensor(codes, dtype=torch.float32)

    def build_head(self, in_features):
        return LinearHashHead(in_features, self.nbits)

    def loss(self, outputs, labels, indices, step):
        targets = self._targets.to(outputs.device)[indices]
        return ((outputs - targets) ** 2).mean()
