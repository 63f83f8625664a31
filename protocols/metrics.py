"""Retrieval metrics exactly as PROTOCOL.md defines them.

Inputs are rankings already made by an index (``distances, order = index.rank(queries)``,
:mod:`search.base`): ``order`` (database indices in ranking order, ties broken by ascending index;
-1 in a slot no item fills, never relevant) and the matching ``distances``. Relevance: a database item is
relevant to a query if they share at least one label (multi-hot rows).

AP@K is :func:`common.ranking.average_precision` (the suite's one MAP). Beside it, the tie-aware
MAP@K (``map_tie_aware``, :func:`common.ranking.tie_aware_average_precision`): the expected AP@K over
every order inside each group of equal distances, so it scores the distances, not the tie-break.
"""
from __future__ import annotations

import numpy as np

from common.ranking import (
    average_precision,
    relevance,  # noqa: F401  (part of this module's API)
    tie_aware_average_precision,
    tie_groups,
)


def p_at_n_grid(n_db: int) -> list[int]:
    """N = 100 ... 1000 step 100, cut at the database size."""
    grid = list(range(100, min(1000, n_db) + 1, 100))
    return grid or [n_db]


class RankingScorer:
    """Accumulates metrics over query chunks so memory stays bounded.

    ``add(order, distances, query_labels)`` with full rankings (every database item, in order);
    ``result()`` returns the means. ``map_tie_aware`` needs the ``distances`` (NaN without them): its
    tie groups are those of the full ranking, so items at the K-th distance ranked past K count.
    Radius metrics (precision within Hamming radius 2 and the precision-recall curve over radii
    0..nbits) need ``nbits`` and Hamming ``distances``; with ``nbits=None`` they are NaN / empty.
    """

    def __init__(self, db_labels: np.ndarray, topk: int | None, nbits: int | None = None):
        self.db_labels_t = np.asarray(db_labels, np.float32).T.copy()
        self.n_db = self.db_labels_t.shape[1]
        self.topk = self.n_db if topk is None else min(int(topk), self.n_db)
        self.nbits = nbits
        self.p_at_n_grid = p_at_n_grid(self.n_db)
        self._ap_k, self._ap_all, self._p_r2, self._r2_empty = [], [], [], []
        self._ap_k_ties = []
        self._p_at_n = []
        self._pr_precision, self._pr_recall = [], []

    def add(self, order: np.ndarray, distances: np.ndarray | None, query_labels: np.ndarray):
        if order.shape[1] != self.n_db:
            raise ValueError("the scorer needs full rankings (every database item) to compute MAP@all")
        relevant_all = (np.asarray(query_labels, np.float32) @ self.db_labels_t) > 0
        relevant_ranked = np.take_along_axis(relevant_all, order, axis=1) & (order >= 0)
        self._ap_k.append(average_precision(relevant_ranked[:, : self.topk]))
        self._ap_all.append(average_precision(relevant_ranked))
        if distances is not None:
            sizes, rel = tie_groups(relevant_ranked, np.asarray(distances), self.topk)
            self._ap_k_ties.append(tie_aware_average_precision(sizes, rel, self.topk))
        else:
            self._ap_k_ties.append(np.full(len(order), np.nan))
        hits = np.cumsum(relevant_ranked, axis=1)
        self._p_at_n.append(np.stack([hits[:, n - 1] / n for n in self.p_at_n_grid], axis=1))
        if self.nbits is not None and distances is not None:
            self._add_radius_metrics(np.asarray(distances), relevant_ranked)

    def _add_radius_metrics(self, distances, relevant_ranked):
        n_query, n_radii = len(distances), self.nbits + 1
        # counts of retrieved and relevant-retrieved items at each exact distance, then cumulated
        clipped = np.minimum(distances.astype(np.int64), n_radii)  # unreached items land past nbits
        flat = clipped + (n_radii + 1) * np.arange(n_query)[:, None]
        size = n_query * (n_radii + 1)
        retrieved = np.bincount(flat.ravel(), minlength=size).reshape(n_query, -1)[:, :n_radii].cumsum(1)
        rel_retrieved = np.bincount(flat.ravel(), weights=relevant_ranked.ravel().astype(np.float64),
                                    minlength=size).reshape(n_query, -1)[:, :n_radii].cumsum(1)
        precision = np.divide(rel_retrieved, retrieved, out=np.zeros_like(rel_retrieved), where=retrieved > 0)
        total_relevant = relevant_ranked.sum(axis=1, keepdims=True)
        recall = np.divide(rel_retrieved, total_relevant, out=np.zeros_like(rel_retrieved),
                           where=total_relevant > 0)
        radius2 = min(2, self.nbits)
        self._p_r2.append(precision[:, radius2])
        self._r2_empty.append(retrieved[:, radius2] == 0)
        self._pr_precision.append(precision)
        self._pr_recall.append(recall)

    def result(self) -> dict:
        ap_k = np.concatenate(self._ap_k)
        out = {
            "map": float(ap_k.mean()),
            "map_tie_aware": float(np.concatenate(self._ap_k_ties).mean()),
            "map_all": float(np.concatenate(self._ap_all).mean()),
            "n_query_no_relevant_topk": int(np.sum(ap_k == 0)),
            "p_at_n": dict(zip(self.p_at_n_grid, np.concatenate(self._p_at_n).mean(axis=0).tolist())),
        }
        if self._p_r2:
            out["p_r2"] = float(np.concatenate(self._p_r2).mean())
            out["p_r2_empty_frac"] = float(np.concatenate(self._r2_empty).mean())
            out["pr_curve"] = {
                "radius": list(range(self.nbits + 1)),
                "precision": np.concatenate(self._pr_precision).mean(axis=0).tolist(),
                "recall": np.concatenate(self._pr_recall).mean(axis=0).tolist(),
            }
        else:
            out["p_r2"] = float("nan")
            out["p_r2_empty_frac"] = float("nan")
        return out


def score_index(index, queries, query_labels, db_labels, topk, nbits=None, chunk: int = 100) -> dict:
    """Rank every query against ``index`` in chunks and score the rankings."""
    radius_bits = nbits if index.metric == "hamming" else None
    scorer = RankingScorer(db_labels, topk, radius_bits)
    for start in range(0, len(query_labels), chunk):
        distances, order = index.rank(queries[start:start + chunk], topk=None)
        scorer.add(order, distances, query_labels[start:start + chunk])
    return scorer.result()
