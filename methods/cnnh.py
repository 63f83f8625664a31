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
from numba import njit

from methods import register
from methods.base import Int, Real
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


@njit(cache=True)
def _sweep(H, G, row_sq, q, label, A, c, S, SH, single, rows, cols):
    """One sweep of the paper's coordinate descent over every entry H_ij (rows, then columns, in
    the given orders): a Newton step on the entry, clipped to [-1, 1], halved until the objective
    decreases. G = H^T H, ``row_sq`` = row norms^2 and S H (``A`` = Y^T H and ``c`` = column sums
    when S = 2 Y Y^T - 1 factors through single labels, else the dense ``SH``) are kept up to date,
    so an update costs O(q) (single labels) or O(n). Returns the objective's total change."""
    n = H.shape[0]
    total = 0.0
    for i in rows:
        for j in cols:
            h = H[i, j]
            r_ii = row_sq[i] - q  # S_ii = 1
            hg = 0.0
            for k in range(q):
                hg += H[i, k] * G[k, j]
            sh = 2.0 * A[label[i], j] - c[j] if single else SH[i, j]
            rh = hg - q * sh  # (R H)_ij, R = H H^T - q S
            p = rh - r_ii * h  # sum over k != i of R_ik H_kj
            others = G[j, j] - h * h  # sum over k != i of H_kj^2
            step = -rh / max(G[j, j] + h * h + r_ii, 1e-6)  # gradient 4 rh over curvature 4 (...)
            t = 1.0
            for _ in range(8):
                a = min(1.0, max(-1.0, h + t * step))
                d = a - h
                # exact change of ||H H^T - q S||^2 when H_ij moves by d (off-diagonal twice, then R_ii)
                change = 4.0 * d * p + 2.0 * d * d * others + (2.0 * d * h + d * d) * (2.0 * r_ii + 2.0 * d * h + d * d)
                if change < 0.0:
                    for k in range(q):
                        if k != j:
                            G[j, k] += d * H[i, k]
                            G[k, j] += d * H[i, k]
                    G[j, j] += 2.0 * d * h + d * d
                    row_sq[i] += 2.0 * d * h + d * d
                    if single:
                        A[label[i], j] += d
                        c[j] += d
                    else:
                        for k in range(n):
                            SH[k, j] += d * S[k, i]
                    H[i, j] = a
                    total += change
                    break
                t *= 0.5
    return total


def learn_target_codes(labels: np.ndarray, nbits: int, max_sweeps: int = 50, tol: float = 1e-4, rng=None):
    """Stage 1: H in [-1, 1]^{n x nbits} minimising ||H H^T - q S||^2 by the paper's coordinate
    descent, one entry at a time in random order, until a sweep lowers the objective by less than
    ``tol`` of it (or ``max_sweeps``). Returns (H binarised to {-1, 1}, objective after each sweep)."""
    rng = np.random.default_rng(rng)
    S = _Similarity(labels)
    n, q = len(S.Y), nbits
    H = rng.uniform(-1.0, 1.0, (n, q))
    G, row_sq = H.T @ H, np.sum(H * H, axis=1)
    if S.single:
        label = np.argmax(S.Y, axis=1).astype(np.int64)
        A, c = S.Y.T @ H, H.sum(axis=0)
        dense, SH = np.zeros((1, 1), np.float32), np.zeros((1, 1))
    else:
        label, A, c = np.zeros(n, np.int64), np.zeros((1, q)), np.zeros(q)
        dense, SH = S.S, S.dot(H)
    history = [cnnh_objective(H, S)]
    for _ in range(max_sweeps):
        change = _sweep(H, G, row_sq, q, label, A, c, dense, SH, S.single, rng.permutation(n), rng.permutation(q))
        history.append(history[-1] + change)
        if -change <= tol * history[-2]:
            break
    return np.where(H >= 0, 1.0, -1.0), history


@register("cnnh")
class CNNH(DeepHashMethod):
    """CNNH on the shared trainer. Stage 1 runs the paper's coordinate descent (one entry at a time,
    random order, compiled) to convergence: until a sweep lowers the objective by less than
    ``stage1_tol`` of it, at most ``stage1_sweeps`` sweeps; ``fit_info`` records the sweeps run, the
    objective / n^2 and the number of distinct target codes. Measured on Fashion-MNIST's 4,500
    training items at 64 bits: a column-at-a-time update (this class before cache version 2) left
    1,323 distinct target codes after its default 10 sweeps, where the paper's per-entry descent
    reaches one code per class within a few sweeps.

    Deviations from the paper, and why:

    - Stage 2 uses the shared ``compact-cnn`` (the paper's network is a similar small CNN for
      32x32 inputs) with a linear output layer and a squared loss to the binary targets; CNNH+'s
      extra class-label outputs are not used.
    - Optimiser: Adam with a cosine schedule, the output layer at 10x.
    """

    paper_table1 = True

    param_rules = {"stage1_sweeps": Int(1), "stage1_tol": Real(0.0, 1.0, closed_low=True)}
    #: 2: stage 1 is the paper's per-entry coordinate descent run to convergence
    cache_version = 2

    def __init__(self, nbits: int = 32, random_state: int = 0, stage1_sweeps: int = 50, stage1_tol: float = 1e-4,
                 **kwargs):
        super().__init__(nbits=nbits, random_state=random_state, **kwargs)
        self.stage1_sweeps = stage1_sweeps
        self.stage1_tol = stage1_tol

    def prepare(self, labels_train):
        codes, history = learn_target_codes(labels_train, self.nbits, self.stage1_sweeps, self.stage1_tol,
                                            rng=np.random.default_rng(self.random_state))
        self.stage1_objective_ = history
        self._stage1_info = {"stage1_sweeps_run": len(history) - 1,
                             "stage1_objective_per_n2": round(history[-1] / len(codes) ** 2, 4),
                             "stage1_distinct_codes": int(len(np.unique(codes, axis=0)))}
        self._targets = torch.as_tensor(codes, dtype=torch.float32)

    def extra_fit_info(self) -> dict:
        return dict(self._stage1_info)

    def build_head(self, in_features):
        return LinearHashHead(in_features, self.nbits)

    def loss(self, outputs, labels, indices, step):
        targets = self._targets.to(outputs.device)[indices]
        return ((outputs - targets) ** 2).mean()
