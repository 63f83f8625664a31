"""One interface for every index, and a registry of them.

An index is built over database codes and answers queries:

- ``search(query_codes, k) -> (ids, distances)``: the top ``k`` per query, ``(n_query, k)``;
- ``rank(query_codes, topk=None) -> (order, distances)``: the ranking the metrics score, every
  database item when ``topk`` is None (an approximate index ranks what it reaches first, then the
  rest), so that ``search(q, k)`` is the first ``k`` columns of ``rank(q)``;
- ``nbytes``: the exact memory of what the index holds;
- ``name`` (its registry name), ``metric`` (``"hamming"``: distances are Hamming distances of the
  full code, so radius metrics apply; ``"adc"``: asymmetric distances), ``search_params()`` and
  ``set_search_params(**params)`` for the parameters that change a query but not the structure
  (validated by the index: ``check_search_params``), and ``label``, the text a record's ``search``
  column holds (``hamming``, ``tree:0.3``).

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


class Index:
    """Base of every index; see the module docstring for the contract."""

    name = "base"  # set by @register_index
    metric = "hamming"
    #: parameters that change a query, not the structure (set with ``set_search_params``)
    search_param_names: tuple[str, ...] = ()

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

    def search(self, query_codes: np.ndarray, k: int):
        raise NotImplementedError

    def rank(self, query_codes: np.ndarray, topk: int | None = None):
        raise NotImplementedError

    @property
    def nbytes(self) -> int:
        raise NotImplementedError
