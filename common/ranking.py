"""Relevance and average precision: the one MAP of the suite (metrics, validation during training
and the efficiency protocol all score through here).

AP@K = (1 / R_K) * sum_{k <= K} P@k * rel_k, with R_K the relevant items in the top K; AP = 0 when
R_K = 0 and such queries still count in the mean (DeepHash-pytorch's CalcTopMap; HashNet's own
evaluation drops them instead, see PROTOCOL.md).
"""
from __future__ import annotations

import numpy as np


def relevance(query_labels: np.ndarray, db_labels: np.ndarray) -> np.ndarray:
    """``(n_query, n_db)`` bool: do query i and database item j share a label (multi-hot rows)."""
    return (np.asarray(query_labels, np.float32) @ np.asarray(db_labels, np.float32).T) > 0


def relevance_of(query_labels: np.ndarray, db_labels: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Relevance of retrieved ``ids`` ``(n_query, k)`` to each query; ``-1`` (nothing) is irrelevant."""
    ids = np.asarray(ids)
    valid = ids >= 0
    out = np.zeros(ids.shape, dtype=bool)
    rows = np.nonzero(valid)[0]
    out[valid] = (np.asarray(query_labels, np.float32)[rows] * np.asarray(db_labels, np.float32)[ids[valid]]).sum(1) > 0
    return out


def average_precision(relevant_ranked: np.ndarray) -> np.ndarray:
    """AP of each row of ``relevant_ranked`` (bool, ranking order, already cut at K)."""
    rel = np.asarray(relevant_ranked, dtype=np.float64)
    hits = np.cumsum(rel, axis=1)
    precision_at_k = hits / np.arange(1, rel.shape[1] + 1)
    n_relevant = hits[:, -1] if rel.shape[1] else np.zeros(len(rel))
    total = (precision_at_k * rel).sum(axis=1)
    return np.divide(total, n_relevant, out=np.zeros(len(rel)), where=n_relevant > 0)


def mean_average_precision(relevant_ranked: np.ndarray) -> float:
    return float(np.mean(average_precision(relevant_ranked))) if len(relevant_ranked) else float("nan")
