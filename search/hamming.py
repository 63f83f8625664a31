"""Exhaustive Hamming ranking over packed uint8 codes.

Ranking order (PROTOCOL.md): ascending Hamming distance, ties by ascending database index.
"""
from __future__ import annotations

import numpy as np


def _as_words(codes: np.ndarray) -> np.ndarray:
    """View packed codes as uint64 words (zero-padded to a multiple of 8 bytes) for popcount."""
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    pad = (-codes.shape[1]) % 8
    if pad:
        codes = np.concatenate([codes, np.zeros((len(codes), pad), np.uint8)], axis=1)
    return codes.view(np.uint64)


def hamming_distances(query_codes: np.ndarray, db_codes: np.ndarray, chunk: int = 64) -> np.ndarray:
    """All Hamming distances ``(n_query, n_db)`` as uint16, in query chunks to bound memory."""
    query_words, db_words = _as_words(query_codes), _as_words(db_codes)
    if query_words.shape[1] != db_words.shape[1]:
        raise ValueError(f"query codes have {query_codes.shape[1]} bytes, database codes {db_codes.shape[1]}")
    out = np.empty((len(query_words), len(db_words)), np.uint16)
    for start in range(0, len(query_words), chunk):
        block = query_words[start:start + chunk, None, :] ^ db_words[None, :, :]
        out[start:start + chunk] = np.bitwise_count(block).sum(axis=2, dtype=np.uint16)
    return out


def rank_by_distance(distances: np.ndarray, topk: int | None = None) -> np.ndarray:
    """Database indices in ranking order per row: ascending distance, ties by index."""
    # numpy's stable sort of small integers is a radix sort: a full sort beats argpartition here
    # (measured: 1,000 x 69,000 uint16 distances, 1.3 s full vs 2.8 s with a unique-key partition)
    order = np.argsort(distances, axis=1, kind="stable")
    return order if topk is None else order[:, :topk]


class HammingIndex:
    """Exhaustive Hamming scan; ``rank`` gives indices and distances in ranking order."""

    is_hamming = True  # distances are Hamming distances of the full code (radius metrics apply)

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

        query_words, db_words = _as_words(query_codes), _as_words(self.db_codes)
        if query_words.shape[1] != db_words.shape[1]:
            raise ValueError(f"query codes have {query_codes.shape[1]} bytes, database codes {self.db_codes.shape[1]}")
        return hamming_topk(query_words, db_words, int(k), self.nbits)

    def rank(self, query_codes: np.ndarray, topk: int | None = None):
        distances = hamming_distances(query_codes, self.db_codes)
        order = rank_by_distance(distances, topk)
        return order, np.take_along_axis(distances, order, axis=1)
