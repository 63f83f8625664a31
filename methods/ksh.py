"""KSH: kernel-based supervised hashing (Liu, Wang, Ji, Jiang & Chang, CVPR 2012), following the
paper and the authors' ``KSH_demo.m`` / ``OptProjectionFast.m``.

Hash function (Sec. 3, kernel-based hashing): ``h(x) = sgn(a^T k(x))`` with ``k(x)`` the
Gaussian kernel between ``x`` and ``m`` anchors sampled from the training data,
``exp(-||x - anchor||^2 / (2 sigma))`` where ``sigma`` is the mean squared training-to-anchor
distance (the authors' code), minus the kernel vector's mean over the training set (zero-mean
bits).

Objective (Sec. 3, code inner products): ``min_H ||H H^T - r S||_F^2`` over ``l`` labelled items,
``S_ij = +1`` if items ``i, j`` share a label else ``-1``, ``r = nbits``. Bits are learned greedily
(Sec. 3, greedy optimisation): with the residual ``R_{k-1} = r S - sum_{t<k} h_t h_t^T``, bit ``k``
maximises ``h^T R_{k-1} h``:

1. spectral relaxation: the top generalised eigenvector of
   ``K^T R_{k-1} K a = lambda K^T K a``, scaled so that ``a^T K^T K a = l``;
2. the sign replaced by ``phi(x) = 2 / (1 + exp(-x)) - 1`` (sigmoid smoothing) and the smoothed
   cost ``-phi(K a)^T R_{k-1} phi(K a)`` minimised by gradient descent (the authors use Nesterov's
   accelerated gradient with a backtracking step, at most 500 steps, stopping when the cost
   changes by <= 1e-2 * l);
3. the descended ``a`` is kept only if its discrete bits score higher than the spectral start's
   (the authors' code), then ``R_k = R_{k-1} - h_k h_k^T``.

``S`` is never formed for single-label data: there ``S = 2 Y Y^T - 1 1^T`` exactly, so products
with the residual cost O(l (C + k)) instead of O(l^2) (same numbers, faster); multi-label data
uses the dense matrix.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

from methods import register
from methods.base import HashMethod, Int, as_features, check_nbits, pack_codes, rbf_features, squared_distances


def smooth_sign(z: np.ndarray) -> np.ndarray:
    """``phi(z) = 2 / (1 + exp(-z)) - 1`` (KSH's sigmoid smoothing), as tanh(z / 2): no overflow."""
    return np.tanh(0.5 * z)


class _Residual:
    """The residual ``r S - H H^T`` of the greedy step as an operator (products only)."""

    def __init__(self, labels: np.ndarray, r: float):
        labels = np.asarray(labels, dtype=np.float64)
        self.r = r
        self.single = bool(np.all(labels.sum(axis=1) == 1))
        if self.single:
            self.Y = labels
        else:
            self.S = np.where(labels @ labels.T > 0, 1.0, -1.0)
        self.H = np.zeros((len(labels), 0))

    def dot(self, V: np.ndarray) -> np.ndarray:
        if self.single:  # S = 2 Y Y^T - 1 1^T
            SV = 2.0 * (self.Y @ (self.Y.T @ V)) - V.sum(axis=0, keepdims=True)
        else:
            SV = self.S @ V
        return self.r * SV - self.H @ (self.H.T @ V)

    def quad(self, v: np.ndarray) -> float:
        return float(v @ self.dot(v))

    def add_bit(self, h: np.ndarray):
        self.H = np.column_stack([self.H, h])


def optimise_projection(K, residual, a0, max_iter=500, tol=1e-2):
    """Minimise ``-phi(K a)^T R phi(K a)`` from ``a0`` by Nesterov's accelerated gradient with a
    backtracking step (the authors' OptProjectionFast). Returns ``a`` and the cost trace / l."""
    n = len(K)

    def cost_and_phi(a):
        phi = smooth_sign(K @ a)
        return -residual.quad(phi), phi

    cost0, _ = cost_and_phi(a0)
    costs = [cost0, cost0]
    a_prev, a_cur = a0.copy(), a0.copy()
    delta_prev, delta_cur, step = 0.0, 1.0, 1.0
    for _ in range(max_iter):
        alpha = (delta_prev - 1.0) / delta_cur
        v = a_cur + alpha * (a_cur - a_prev)
        cost_v, phi = cost_and_phi(v)
        # gradient of -phi^T R phi with phi' = (1 - phi^2) / 2
        grad = -K.T @ (residual.dot(phi) * (1.0 - phi ** 2))
        accepted = False
        for j in range(51):
            b = 2.0 ** j * step
            z = v - grad / b
            cost_z, _ = cost_and_phi(z)
            diff = z - v
            if cost_z <= cost_v + grad @ diff + 0.5 * b * (diff @ diff):
                accepted = True
                step = b
                a_prev, a_cur = a_cur, z
                costs.append(cost_z)
                break
        if not accepted:
            break
        delta_prev, delta_cur = delta_cur, (1.0 + np.sqrt(1.0 + 4.0 * delta_cur ** 2)) / 2.0
        if abs(costs[-1] - costs[-2]) / n <= tol:
            break
    return a_cur, np.asarray(costs) / n


@register("ksh")
class KSH(HashMethod):
    """Kernel-based supervised hashing.

    Parameters: ``n_anchors`` (m = 300, the paper), ``n_labeled`` (l = 2000 labelled training
    items, the paper; ``None`` = all), ``max_iter`` (500 descent steps per bit, the authors' code).
    Anchors and the labelled subset are sampled (without replacement) from the training set with
    ``random_state``; both are clipped to the training-set size.

    Learned attributes: ``anchors_``, ``sigma_``, ``kernel_mean_``, ``projections_`` (m, nbits),
    ``smoothed_objective_`` (nbits, 2): the smoothed cost ``-phi^T R_{k-1} phi / l`` of bit ``k`` at
    its spectral start and at the kept projection, ``descent_kept_`` (nbits,) whether the descended
    projection replaced the spectral one, ``residual_error_`` (nbits,): the objective's
    ``||r S - H_k H_k^T||_F^2 / l^2`` after each bit.
    """

    paper_table1 = True

    param_rules = {"n_anchors": Int(1), "n_labeled": Int(2, none=True), "max_iter": Int(1)}

    supervised = True
    fast_params = {"n_anchors": 50, "max_iter": 50}

    def __init__(self, nbits: int = 32, random_state: int = 0, n_anchors: int = 300,
                 n_labeled: int | None = 2000, max_iter: int = 500):
        super().__init__(nbits=nbits, random_state=random_state)
        self.n_anchors = n_anchors
        self.n_labeled = n_labeled
        self.max_iter = max_iter

    def fit(self, X, y=None):
        nbits = check_nbits(self.nbits)
        if y is None:
            raise ValueError("KSH is supervised: fit(X, y) needs the label matrix y")
        X = as_features(X)
        labels = np.asarray(y).reshape(len(X), -1)
        n = len(X)
        rng = np.random.default_rng(self.random_state)
        m = min(int(self.n_anchors), n)
        self.anchors_ = X[np.sort(rng.choice(n, m, replace=False))]
        d2 = squared_distances(X, self.anchors_)
        self.sigma_ = float(d2.mean())
        K_all = np.exp(-d2 / (2.0 * self.sigma_))
        self.kernel_mean_ = K_all.mean(axis=0)
        K_all -= self.kernel_mean_
        n_lab = n if self.n_labeled is None else min(int(self.n_labeled), n)  # the paper's l
        labelled = np.sort(rng.choice(n, n_lab, replace=False))
        K = K_all[labelled]
        residual = _Residual(labels[labelled], r=float(nbits))
        RM = K.T @ K
        projections = np.zeros((m, nbits))
        smoothed = np.zeros((nbits, 2))
        kept = np.zeros(nbits, dtype=bool)
        errors = np.zeros(nbits)
        n_steps = []
        error = n_lab * n_lab * float(nbits) ** 2  # ||r S||_F^2 with S in {-1, +1}
        for k in range(nbits):
            LM = K.T @ residual.dot(K)
            LM = 0.5 * (LM + LM.T)
            a0 = self._top_generalised_eigenvector(LM, RM)
            a0 *= np.sqrt(n_lab / (a0 @ RM @ a0))
            a1, costs = optimise_projection(K, residual, a0, max_iter=self.max_iter)
            n_steps.append(len(costs) - 2)
            h0 = np.where(K @ a0 > 0, 1.0, -1.0)
            h1 = np.where(K @ a1 > 0, 1.0, -1.0)
            if residual.quad(h1) > residual.quad(h0):
                a, h, kept[k] = a1, h1, True
            else:
                a, h = a0, h0
            smoothed[k] = costs[0], -residual.quad(smooth_sign(K @ a)) / n_lab
            # ||R - h h^T||^2 = ||R||^2 - 2 h^T R h + ||h||^4
            error += -2.0 * residual.quad(h) + float(n_lab) ** 2
            errors[k] = error / n_lab ** 2
            residual.add_bit(h)
            projections[:, k] = a
        self.projections_ = projections
        self.smoothed_objective_ = smoothed
        self.descent_kept_ = kept
        self.residual_error_ = errors
        self.fit_info_ = {"n_anchors": m, "n_labeled": n_lab, "sigma": self.sigma_,
                          "descent_steps_mean": float(np.mean(n_steps)),
                          "descent_kept": int(kept.sum())}
        return self

    @staticmethod
    def _top_generalised_eigenvector(LM, RM):
        m = len(LM)
        try:
            _, vec = scipy.linalg.eigh(LM, RM, subset_by_index=[m - 1, m - 1])
        except np.linalg.LinAlgError:
            # K^T K singular (duplicate anchors): a ridge of 1e-10 of its mean diagonal
            ridge = 1e-10 * np.trace(RM) / m
            _, vec = scipy.linalg.eigh(LM, RM + ridge * np.eye(m), subset_by_index=[m - 1, m - 1])
        return vec[:, 0].copy()

    def kernel_features(self, X) -> np.ndarray:
        """Mean-centred Gaussian kernel features ``k(x) - mean`` (n, m), in chunks."""
        self._check_fitted("projections_")
        X = as_features(X)
        return rbf_features(X, self.anchors_, 2.0 * self.sigma_) - self.kernel_mean_

    def encode(self, X):
        return pack_codes(self.kernel_features(X) @ self.projections_)
