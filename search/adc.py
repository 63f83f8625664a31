"""Asymmetric distance computation (ADC, Jegou, Douze & Schmid, TPAMI 2011) over product-quantiser
codes: OPQ's search (:mod:`methods.opq`)."""
from __future__ import annotations

import numpy as np

from search.base import Index, register_index


@register_index("adc")
class ADCIndex(Index):
    """Exhaustive asymmetric-distance scan over PQ codes.

    ``D, I = search(queries, k)`` and ``rank(queries, topk)`` take rotated float queries
    (``OPQ.encode_queries``) and return the distances ``sum_m ||q_m - c_m[code_m]||^2`` (float64
    tables, so identical codes give bit-identical distances; ``inf`` in an empty slot) and the
    database ids by ascending distance, ties by ascending id. ``nbytes`` counts the codes and the
    codebooks (float32, as faiss stores them).
    """

    metric = "adc"
    distance_dtype = np.float64
    missing_distance = np.inf

    def __init__(self, db_codes: np.ndarray, centroids: np.ndarray, chunk: int = 32):
        self.db_codes = self.check_database(db_codes)
        self.centroids = np.asarray(centroids, dtype=np.float64)
        if self.centroids.ndim != 3:
            raise ValueError(f"centroids must be (M, 256, d / M), got shape {self.centroids.shape}")
        M = self.centroids.shape[0]
        if self.db_codes.shape[1] != M:
            raise ValueError(f"db_codes must be PQ codes of {M} bytes (one per sub-quantiser), got shape "
                             f"{self.db_codes.shape}")
        # column m of the codes indexes row m * 256 + code of the flattened tables
        self._flat_codes = (self.db_codes.astype(np.intp) + np.arange(M) * self.centroids.shape[1]).T.copy()
        self.chunk = chunk

    @property
    def nbytes(self) -> int:
        return int(self.db_codes.nbytes + self.centroids.size * 4)

    def __len__(self):
        return len(self.db_codes)

    def check_queries(self, queries) -> np.ndarray:
        """The queries checked: 2-D float vectors as wide as the codebooks (``M * d / M``)."""
        queries = np.asarray(queries)
        if not np.issubdtype(queries.dtype, np.floating):
            raise TypeError(f"queries must be float vectors (OPQ.encode_queries), got dtype {queries.dtype}")
        width = self.centroids.shape[0] * self.centroids.shape[2]
        if queries.ndim != 2 or queries.shape[1] != width:
            raise ValueError(f"queries must have shape (n, {width}), got {queries.shape}")
        return queries

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

    def _rank(self, queries, k: int):
        orders, dists = [], []
        for start in range(0, len(queries), self.chunk):
            dist = self.distances(queries[start:start + self.chunk])
            order = np.argsort(dist, axis=1, kind="stable")[:, :k]
            orders.append(order)
            dists.append(np.take_along_axis(dist, order, axis=1))
        return np.concatenate(dists), np.concatenate(orders)

    def _search(self, queries, k: int):
        return self._rank(queries, min(k, len(self)))
