"""ITQ: iterative quantisation (Gong & Lazebnik, CVPR 2011; Gong et al., TPAMI 2013, Sec. 3).

PCA to ``nbits`` dimensions V, then alternate B = sgn(V R) and the orthogonal Procrustes update
R = U_A U_B^T from the SVD B^T V = U_B S U_A^T, minimising the quantisation loss ||B - V R||_F^2
(eq. 2). The paper uses 50 iterations and a random orthogonal start.
"""
from __future__ import annotations

import numpy as np

from methods import register
from methods.base import HashMethod, Int, as_features, check_nbits, pack_codes, random_rotation


@register("itq")
class ITQ(HashMethod):
    paper_table1 = True

    param_rules = {"n_iter": Int(0)}

    def __init__(self, nbits: int = 32, random_state: int = 0, n_iter: int = 50):
        super().__init__(nbits=nbits, random_state=random_state)
        self.n_iter = n_iter

    def fit(self, X, y=None):
        nbits = check_nbits(self.nbits)
        X = as_features(X)
        if nbits > min(X.shape):
            raise ValueError(f"ITQ needs nbits <= min(n_train, dim) = {min(X.shape)}, got {nbits}")
        rng = np.random.default_rng(self.random_state)
        self.mean_ = X.mean(axis=0)
        centred = X - self.mean_
        # PCA: top-nbits eigenvectors of the covariance, ordered by eigenvalue
        eigvals, eigvecs = np.linalg.eigh(centred.T @ centred)
        self.pca_ = eigvecs[:, np.argsort(eigvals)[::-1][:nbits]]
        V = centred @ self.pca_
        R = random_rotation(nbits, rng)
        losses = []
        for _ in range(self.n_iter):
            B = np.where(V @ R > 0, 1.0, -1.0)
            losses.append(float(np.sum((B - V @ R) ** 2)))
            U_B, _, U_A_T = np.linalg.svd(B.T @ V)
            R = (U_B @ U_A_T).T
        B = np.where(V @ R > 0, 1.0, -1.0)
        losses.append(float(np.sum((B - V @ R) ** 2)))
        self.rotation_ = R
        self.quantization_loss_ = losses
        return self

    def encode(self, X):
        self._check_fitted("rotation_")
        return pack_codes((as_features(X) - self.mean_) @ self.pca_ @ self.rotation_)
