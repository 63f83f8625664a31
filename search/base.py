"""One interface for every index, and a registry of them.

An index is built over database codes and answers queries, as faiss's do:

- ``D, I = index.search(query_codes, k)``: the top ``k`` per query, nearest first. ``D`` holds the
  distances (int32 Hamming distances; float64 for ``adc``), ``I`` the database ids (int64), both
  ``(n_query, k)``. Slots no item fills (``k`` above the database size, or an approximate index
  that found fewer) hold id ``-1`` and distance :data:`MISSING_DISTANCE` (``2**31 - 1``, faiss's
  ``INT_MAX`` for binary indexes; ``inf`` for ``adc``).
- ``D, I = index.rank(query_codes, topk=None)``: the ranking the metrics score, in the same
  convention, every database item when ``topk`` is None (an approximate index ranks what it
  reaches first, then the rest), so that ``search(q, k)`` is the first ``k`` columns of
  ``rank(q)``;
- ``nbytes``: the exact memory of what the index holds;
- ``name`` (its registry name), ``metric`` (``"hamming"``: distances are Hamming distances of the
  full code, so radius metrics apply; ``"adc"``: asymmetric distances), ``search_params()`` and
  ``set_search_params(**params)`` for the parameters that change a query but not the structure
  (validated by the index: ``check_search_params``), and ``label``, the text a record's ``search``
  column holds (``hamming``, ``tree:0.3``).

Input is checked here, once for every index, as strictly as faiss checks it: codes are 2-D
``uint8`` arrays (never cast: an int64 300 would wrap to 44), the database is not empty, a query is
as wide as a database code (never zero-padded), ``k`` and ``topk`` are integers >= 1; anything else
raises a one-line ``TypeError`` or ``ValueError`` naming the argument. An index implements
``_search(query_codes, k)`` and ``_rank(query_codes, k)`` on checked input, returning
``(distances, ids)`` of at most ``k`` columns in any numeric types; :meth:`Index.search` and
:meth:`Index.rank` check the input and give the result its types and its ``k`` columns.

A method declares the searches its rows are scored with as data, :class:`SearchMode` (an index
name and its search parameters), and builds them with :func:`create_index`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from common.registry import Registry, UnknownNameError


class UnknownIndexError(UnknownNameError):
    pass


_REGISTRY = Registry("index", plural="indexes", error=UnknownIndexError)
#: class decorator: make an :class:`Index` subclass available as ``name``
register_index = _REGISTRY.register
list_indexes = _REGISTRY.names
get_index_class = _REGISTRY.get


def create_index(name: str, db_codes: np.ndarray, **params):
    """Build the index registered as ``name`` over ``db_codes`` (build and search parameters alike)."""
    return get_index_class(name)(db_codes, **params)


def _format(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class SearchMode:
    """One way a method's rows are searched: an index name and its search parameters."""

    index: str
    params: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The record's ``search`` value: ``hamming``, ``adc``, ``tree:0.3``."""
        values = ",".join(_format(v) for v in self.params.values())
        return f"{self.index}:{values}" if values else self.index

    def check(self) -> SearchMode:
        """Validate the parameters with the index that owns them (raises ValueError)."""
        get_index_class(self.index).check_search_params(**self.params)
        return self


#: the distance of a slot no item fills (id -1): faiss's INT_MAX for binary indexes
MISSING_DISTANCE = np.iinfo(np.int32).max


def check_codes(codes, name: str) -> np.ndarray:
    """``codes`` as a C-contiguous 2-D uint8 array, or a one-line error naming ``name``; never cast."""
    codes = np.asarray(codes)
    if codes.dtype != np.uint8:
        raise TypeError(f"{name} must be packed uint8 codes, got dtype {codes.dtype}; casting is the caller's "
                        "choice (an int64 300 would wrap to 44)")
    if codes.ndim != 2 or codes.shape[1] == 0:
        raise ValueError(f"{name} must be 2-D (n, bytes per code) with at least one byte, got shape {codes.shape}")
    return np.ascontiguousarray(codes)


def check_k(k, name: str = "k") -> int:
    """``k`` as an int, or a one-line error unless it is an integer >= 1."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"{name} must be an integer >= 1, got {k!r}")
    if k < 1:
        raise ValueError(f"{name} must be >= 1, got {k}")
    return int(k)


class Index:
    """Base of every index; see the module docstring for the contract."""

    name = "base"  # set by @register_index
    metric = "hamming"
    #: parameters that change a query, not the structure (set with ``set_search_params``)
    search_param_names: tuple[str, ...] = ()
    #: the type of ``D`` and the distance of an empty slot
    distance_dtype = np.int32
    missing_distance = MISSING_DISTANCE
    #: bytes per database code (set by :meth:`check_database`): the width every query must have
    code_bytes = 0

    @classmethod
    def check_search_params(cls, **params) -> dict:
        """The validated search parameters; unknown names raise ValueError listing the valid ones."""
        unknown = sorted(set(params) - set(cls.search_param_names))
        if unknown:
            valid = ", ".join(cls.search_param_names) or "none"
            raise ValueError(f"index {cls.name} has no search parameter {unknown[0]!r}; valid: {valid}")
        return dict(params)

    def search_params(self) -> dict:
        return {name: getattr(self, name) for name in self.search_param_names}

    def set_search_params(self, **params):
        for key, value in self.check_search_params(**params).items():
            setattr(self, key, value)
        return self

    @property
    def label(self) -> str:
        return SearchMode(self.name, self.search_params()).label

    # -- input: every constructor, search and rank ------------------------------------------
    def check_database(self, db_codes) -> np.ndarray:
        """The database codes checked (2-D uint8, at least one item); records their width."""
        db_codes = check_codes(db_codes, "db_codes")
        if len(db_codes) == 0:
            raise ValueError("db_codes is empty: an index needs at least one database item")
        self.code_bytes = db_codes.shape[1]
        return db_codes

    def check_queries(self, query_codes) -> np.ndarray:
        """The queries checked: 2-D uint8 codes as wide as a database code."""
        query_codes = check_codes(query_codes, "query_codes")
        if query_codes.shape[1] != self.code_bytes:
            raise ValueError(f"query_codes have {query_codes.shape[1]} bytes per code, the database's "
                             f"{self.code_bytes}: encode queries and database with the same model")
        return query_codes

    # -- queries --------------------------------------------------------------------------
    def search(self, query_codes, k: int):
        """``D, I``: the top ``k`` per query, ``(n_query, k)``, nearest first (module docstring)."""
        query_codes, k = self.check_queries(query_codes), check_k(k, "k")
        if len(query_codes) == 0:
            return self._result(*self._empty(), k)
        return self._result(*self._search(query_codes, k), k)

    def rank(self, query_codes, topk: int | None = None):
        """``D, I``: the ranking, every item (``topk`` None) or its first ``topk`` columns."""
        query_codes = self.check_queries(query_codes)
        k = len(self) if topk is None else check_k(topk, "topk")
        if len(query_codes) == 0:
            return self._result(*self._empty(), k)
        return self._result(*self._rank(query_codes, min(k, len(self))), k)

    def _search(self, query_codes: np.ndarray, k: int):
        """``(distances, ids)`` of at most ``k`` columns for checked queries."""
        raise NotImplementedError

    def _rank(self, query_codes: np.ndarray, k: int):
        """``(distances, ids)``, the first ``k`` (<= the database size) of the ranking, for checked queries."""
        raise NotImplementedError

    def _empty(self):
        return np.zeros((0, 0), self.distance_dtype), np.zeros((0, 0), np.int64)

    def _result(self, distances, ids, k: int):
        """``(D, I)`` in the interface's types, padded to ``k`` columns with empty slots."""
        n_query, found = ids.shape
        if found == k:
            return np.ascontiguousarray(distances, self.distance_dtype), np.ascontiguousarray(ids, np.int64)
        padded_distances = np.full((n_query, k), self.missing_distance, self.distance_dtype)
        padded_ids = np.full((n_query, k), -1, np.int64)
        padded_distances[:, :found], padded_ids[:, :found] = distances, ids
        return padded_distances, padded_ids

    def __len__(self):
        raise NotImplementedError

    @property
    def nbytes(self) -> int:
        raise NotImplementedError
