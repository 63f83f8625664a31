"""SH: spectral hashing (Weiss, Torralba & Fergus, NIPS 2008), as the authors' ``trainSH`` /
``compressSH`` define it.

Training (the paper's Sec. 3 and the authors' trainSH):

1. PCA to ``npca = min(nbits, d)`` dimensions (top eigenvectors of the covariance); the data are
   projected without removing the mean, as in trainSH (the box below absorbs the offset).
2. A box bounding the projected training data, ``mn = min - eps`` and ``mx = max + eps`` per
   dimension (``eps`` = machine epsilon, the authors' Matlab ``eps``).
3. The analytical 1-D eigenfunctions of the Laplacian on an interval ``[a, b]`` (the paper's
   closed form for a uniform distribution): ``Phi_k(x) = sin(pi/2 + omega_k x)``,
   ``omega_k = k pi / (b - a)``, with eigenvalue ``lambda_k = 1 - exp(-epsilon^2 omega_k^2 / 2)``
   (``epsilon`` the affinity's width), a monotone function of ``omega_k^2``. For each PCA
   dimension ``i`` modes ``k = 1 .. ceil((nbits + 1) R_i / max R) - 1`` are enumerated (``R`` the
   box's sides); the ``nbits`` with the smallest ``omega^2`` (the constant mode excluded) are
   kept, ties in the order of trainSH's stable sort.

Encoding (compressSH): ``bit = prod_i sin(pi/2 + omega_i (x P - mn)_i) > 0``, ``omega`` the chosen
mode's frequency per PCA dimension (zero in the dimensions the mode does not use).
"""
from __future__ import annotations

import numpy as np

from methods import register
from methods.base import HashMethod, as_features, check_nbits, pack_codes


@register("sh")
class SH(HashMethod):
    """Spectral hashing; no parameters beyond ``nbits`` (the method has no randomness).

    Learned attributes: ``pca_`` (d, npca), ``mn_`` / ``mx_`` (the box), ``modes_`` (nbits, npca)
    integer mode indices (one non-zero entry per row: SH's eigenfunctions are 1-D), ``omegas_``
    (nbits, npca) their frequencies and ``eigenvalues_`` (nbits,) their ``omega^2``, ascending: the
    quantity trainSH ranks by (the paper's ``lambda = 1 - exp(-eps^2 omega^2 / 2)`` orders them
    the same way for any ``eps``).
    """

    paper_table1 = True

    def fit(self, X, y=None):
        nbits = check_nbits(self.nbits)
        X = as_features(X)
        n, dim = X.shape
        if n < 2:
            raise ValueError("SH needs at least 2 training items")
        npca = min(nbits, dim)
        # 1) PCA: top-npca eigenvectors of the covariance (trainSH: eigs(cov(X), npca))
        centred = X - X.mean(axis=0)
        eigvals, eigvecs = np.linalg.eigh(centred.T @ centred / (n - 1))
        top = np.argsort(eigvals, kind="stable")[::-1][:npca]
        self.pca_ = eigvecs[:, top]
        projected = X @ self.pca_  # no mean removal, as trainSH
        # 2) the bounding box, with the authors' epsilon
        eps = np.finfo(np.float64).eps
        self.mn_ = projected.min(axis=0) - eps
        self.mx_ = projected.max(axis=0) + eps
        # 3) enumerate the 1-D eigenfunctions and keep the nbits smallest non-constant ones
        spans = self.mx_ - self.mn_
        max_mode = np.ceil((nbits + 1) * spans / spans.max()).astype(np.int64)
        rows = [np.zeros(npca, np.int64)]  # the constant mode first, as trainSH builds it
        for i in range(npca):
            for k in range(1, max_mode[i]):
                mode = np.zeros(npca, np.int64)
                mode[i] = k
                rows.append(mode)
        modes = np.array(rows)
        omega0 = np.pi / spans
        omegas = modes * omega0
        eigenvalues = np.sum(omegas ** 2, axis=1)
        order = np.argsort(eigenvalues, kind="stable")  # Matlab's sort is stable
        chosen = order[1:nbits + 1]  # skip the constant mode
        if len(chosen) < nbits:
            raise ValueError(f"SH found only {len(chosen)} non-constant modes for {nbits} bits")
        self.modes_ = modes[chosen]
        self.omegas_ = omegas[chosen]
        self.eigenvalues_ = eigenvalues[chosen]
        self.fit_info_ = {"npca": npca}
        return self

    def _embed(self, X) -> np.ndarray:
        """compressSH's real outputs: prod_i sin(pi/2 + omega_i (x P - mn)_i) per bit."""
        self._check_fitted("modes_")
        shifted = as_features(X) @ self.pca_ - self.mn_
        out = np.empty((len(shifted), len(self.omegas_)))
        for bit, omega in enumerate(self.omegas_):
            # dimensions with omega = 0 contribute sin(pi/2) = 1 exactly: skip them
            used = np.flatnonzero(omega)
            out[:, bit] = np.prod(np.sin(shifted[:, used] * omega[used] + np.pi / 2), axis=1)
        return out

    def encode(self, X):
        return pack_codes(self._embed(X))
