"""LSH: sign of random Gaussian projections of centred data (Charikar 2002; the LSH column of
Table I, as in the HashNet and DHN comparisons)."""
from __future__ import annotations

import numpy as np

from methods import register
from methods.base import HashMethod, as_features, check_nbits, pack_codes


@register("lsh")
class LSH(HashMethod):
    paper_table1 = True

    def fit(self, X, y=None):
        nbits = check_nbits(self.nbits)
        X = as_features(X)
        rng = np.random.default_rng(self.random_state)
        self.mean_ = X.mean(axis=0)
        self.projection_ = rng.standard_normal((X.shape[1], nbits))
        return self

    def encode(self, X):
        self._check_fitted("projection_")
        return pack_codes((as_features(X) - self.mean_) @ self.projection_)
