"""Hamming distances over packed ``uint8`` codes, and ranking by distance.

Ranking order (PROTOCOL.md): ascending Hamming distance, ties by ascending database index.
"""
from __future__ import annotations

import numpy as np


def as_words(codes: np.ndarray) -> np.ndarray:
    """View packed uint8 codes ``(n, bytes)`` as uint64 words (zero-padded to a multiple of 8 bytes)
    for popcount. Nothing is cast: other types or shapes raise (the indexes check their input first,
    :mod:`search.base`)."""
    codes = np.asarray(codes)
    if codes.dtype != np.uint8 or codes.ndim != 2:
        raise TypeError(f"codes must be a 2-D uint8 array, got {codes.dtype} of shape {codes.shape}")
    codes = np.ascontiguousarray(codes)
    pad = (-codes.shape[1]) % 8
    if pad:
        codes = np.concatenate([codes, np.zeros((len(codes), pad), np.uint8)], axis=1)
    return codes.view(np.uint64)


def hamming_distances(query_codes: np.ndarray, db_codes: np.ndarray, chunk: int = 64) -> np.ndarray:
    """All Hamming distances ``(n_query, n_db)`` as uint16, in query chunks to bound memory."""
    # widths compared in bytes, before the padding to words would make 5 and 8 bytes look alike
    if np.shape(query_codes)[-1:] != np.shape(db_codes)[-1:]:
        raise ValueError(f"query codes have shape {np.shape(query_codes)}, database codes {np.shape(db_codes)}: "
                         "the bytes per code differ")
    query_words, db_words = as_words(query_codes), as_words(db_codes)
    out = np.empty((len(query_words), len(db_words)), np.uint16)
    for start in range(0, len(query_words), chunk):
        block = query_words[start:start + chunk, None, :] ^ db_words[None, :, :]
        out[start:start + chunk] = np.bitwise_count(block).sum(axis=2, dtype=np.uint16)
    return out


def paired_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distance between packed codes ``a[..., :]`` and ``b[..., :]`` of the same shape, uint16."""
    return np.bitwise_count(np.asarray(a, np.uint8) ^ np.asarray(b, np.uint8)).sum(axis=-1, dtype=np.uint16)


def rank_by_distance(distances: np.ndarray, topk: int | None = None) -> np.ndarray:
    """Database indices in ranking order per row: ascending distance, ties by index."""
    # numpy's stable sort of small integers is a radix sort: a full sort beats argpartition here
    # (measured: 1,000 x 69,000 uint16 distances, 1.3 s full vs 2.8 s with a unique-key partition)
    order = np.argsort(distances, axis=1, kind="stable")
    return order if topk is None else order[:, :topk]


def sign_codes_distances(query_real: np.ndarray, db_real: np.ndarray) -> np.ndarray:
    """Hamming distances ``(n_query, n_db)`` uint16 between the codes of real outputs (bit = value > 0),
    as :func:`hamming_distances` gives them for the packed codes (the trainer's validation uses it;
    uint16 keeps :func:`rank_by_distance` on numpy's radix sort)."""
    return hamming_distances(np.packbits(np.asarray(query_real) > 0, axis=1),
                             np.packbits(np.asarray(db_real) > 0, axis=1))
