"""Exhaustive Hamming ranking over packed uint8 codes.

Ranking order (PROTOCOL.md): ascending Hamming distance, ties by ascending database index.
"""
from __future__ import annotations

import numpy as np

from common.hamming import as_words, hamming_distances, rank_by_distance
from search.base import Index, register_index


@register_index("hamming")
class HammingIndex(Index):
    """Exhaustive Hamming scan; ``rank`` gives indices and distances in ranking order."""

    def __init__(self, db_codes: np.ndarray, nbits: int | None = None):
        self.db_codes = np.ascontiguousarray(db_codes, dtype=np.uint8)
        self.nbits = nbits if nbits is not None else 8 * self.db_codes.shape[1]

    @property
    def nbytes(self) -> int:
        return int(self.db_codes.nbytes)

    def __len__(self):
        return len(self.db_codes)

    def search(self, query_codes: np.ndarray, k: int):
        """Top-``k`` ``(ids, distances)`` per query in ranking order, by the compiled fused scan
        (distances and their histogram in one pass, the top k gathered in a second)."""
        from search.kernels import hamming_topk

        query_words, db_words = as_words(query_codes), as_words(self.db_codes)
        if query_words.shape[1] != db_words.shape[1]:
            raise ValueError(f"query codes have {query_codes.shape[1]} bytes, database codes {self.db_codes.shape[1]}")
        return hamming_topk(query_words, db_words, int(k), self.nbits)

    def rank(self, query_codes: np.ndarray, topk: int | None = None):
        distances = hamming_distances(query_codes, self.db_codes)
        order = rank_by_distance(distances, topk)
        return order, np.take_along_axis(distances, order, axis=1)
