"""Exhaustive Hamming ranking over packed uint8 codes.

Ranking order (PROTOCOL.md): ascending Hamming distance, ties by ascending database index.
"""
from __future__ import annotations

import numpy as np

from common.hamming import as_words, hamming_distances, rank_by_distance
from search.base import Index, register_index


@register_index("hamming")
class HammingIndex(Index):
    """Exhaustive Hamming scan; ``rank`` gives the whole database in ranking order.

    ``nbits``: the code length, between ``8 * (bytes - 1) + 1`` and ``8 * bytes`` (default: every
    bit of the bytes)."""

    def __init__(self, db_codes: np.ndarray, nbits: int | None = None):
        self.db_codes = self.check_database(db_codes)
        width = 8 * self.code_bytes
        self.nbits = width if nbits is None else nbits
        is_integer = isinstance(self.nbits, (int, np.integer)) and not isinstance(self.nbits, bool)
        if not is_integer or not width - 8 < self.nbits <= width:
            raise ValueError(f"nbits must be an integer in ({width - 8}, {width}] for codes of {self.code_bytes} "
                             f"bytes, got {nbits!r}")

    @property
    def nbytes(self) -> int:
        return int(self.db_codes.nbytes)

    def __len__(self):
        return len(self.db_codes)

    def _search(self, query_codes: np.ndarray, k: int):
        """The compiled fused scan: distances and their histogram in one pass, the top k gathered in a second."""
        from search.kernels import hamming_topk

        # the histogram spans every bit of the bytes, whatever nbits says the padding holds
        ids, distances = hamming_topk(as_words(query_codes), as_words(self.db_codes), k, 8 * self.code_bytes)
        return distances, ids

    def _rank(self, query_codes: np.ndarray, k: int):
        distances = hamming_distances(query_codes, self.db_codes)
        order = rank_by_distance(distances, k)
        return np.take_along_axis(distances, order, axis=1), order
