"""Asymmetric distance computation (ADC, Jegou, Douze & Schmid, TPAMI 2011) over product-quantiser
codes: OPQ's search (:mod:`methods.opq`)."""
from __future__ import annotations

import numpy as np

from search.base import Index, register_index


@register_index("adc")
class ADCIndex(Index):
    """Exhaustive asymmetric-distance scan over PQ codes.

    ``rank(queries, topk)`` and ``search(queries, k)`` take rotated float queries (``OPQ.encode_queries``) and returns
    database indices by ascending ``sum_m ||q_m - c_m[code_m]||^2`` (float64 tables, so identical
    codes give bit-identical distances), ties by ascending database index, and those distances.
    ``nbytes`` counts the codes and the codebooks (float32, as faiss stores them).
    """

    metric = "adc"

    def __init__(self, db_codes: np.ndarray, centroids: np.ndarray, chunk: int = 32):
        self.db_codes = np.ascontiguousarray(db_codes, dtype=np.uint8)
        self.centroids = np.asarray(centroids, dtype=np.float64)
        M = self.centroids.shape[0]
        if self.db_codes.ndim != 2 or self.db_codes.shape[1] != M:
            raise ValueError(f"expected PQ codes of {M} bytes, got shape {self.db_codes.shape}")
        # column m of the codes indexes row m * 256 + code of the flattened tables
        self._flat_codes = (self.db_codes.astype(np.intp) + np.arange(M) * self.centroids.shape[1]).T.copy()
        self.chunk = chunk

    @property
    def nbytes(self) -> int:
        return int(self.db_codes.nbytes + self.centroids.size * 4)

    def __len__(self):
        return len(self.db_codes)

    def distance_tables(self, queries: np.ndarray) -> np.ndarray:
        """``(n_query, M * 256)``: ``||q_m - c_{m,k}||^2`` at column ``m * 256 + k``."""
        M, ksub, dsub = self.centroids.shape
        q = np.asarray(queries, dtype=np.float64).reshape(len(queries), M, 1, dsub)
        return ((q - self.centroids[None]) ** 2).sum(axis=3).reshape(len(queries), M * ksub)

    def distances(self, queries: np.ndarray) -> np.ndarray:
        tables = self.distance_tables(queries)
        out = tables[:, self._flat_codes[0]]
        for column in self._flat_codes[1:]:
            out += tables[:, column]
        return out

    def rank(self, queries, topk: int | None = None):
        queries = np.asarray(queries)
        orders, dists = [], []
        for start in range(0, len(queries), self.chunk):
            dist = self.distances(queries[start:start + self.chunk])
            order = np.argsort(dist, axis=1, kind="stable")
            if topk is not None:
                order = order[:, :topk]
            orders.append(order)
            dists.append(np.take_along_axis(dist, order, axis=1))
        if not orders:
            width = len(self) if topk is None else min(topk, len(self))
            return np.zeros((0, width), np.intp), np.zeros((0, width))
        return np.concatenate(orders), np.concatenate(dists)

    def search(self, queries, k: int):
        return self.rank(queries, topk=k)
