"""faiss's binary indexes behind the suite's :class:`search.base.Index` interface.

``faiss-flat`` (``IndexBinaryFlat``, the exhaustive SIMD scan every speedup is quoted against;
search parameters ``use_heap``, 1 = faiss's default heap selection, 0 = its counting selection,
and ``query_batch_size``, the queries scanned together), ``faiss-hash`` (``IndexBinaryHash``:
buckets on the first ``hash_bits`` bits, probing ``nflip`` flipped bits), ``faiss-multihash``
(``IndexBinaryMultiHash``: ``nhash`` tables on disjoint ``hash_bits``-bit substrings, multi-index
hashing), ``faiss-ivf`` (``IndexBinaryIVF``, ``nprobe`` of ``nlist`` lists) and ``faiss-hnsw``
(``IndexBinaryHNSW``, ``M`` links, ``efSearch``). The parameters are faiss's own attributes
(faiss 1.15: ``IndexBinaryFlat.use_heap`` / ``query_batch_size``, ``IndexBinaryHash.b`` / ``nflip``,
``IndexBinaryMultiHash.nhash`` / ``b`` / ``nflip``, ``IndexBinaryIVF.nlist`` / ``nprobe``,
``IndexBinaryHNSW``'s ``M`` and ``hnsw.efSearch``), so a setting here is a setting a faiss user
makes. ``nbytes`` is faiss's serialised size (codes, ids and structure). Threads are the caller's
business (:func:`common.threads.pin_threads`).

``search`` is faiss's own, in faiss's convention (``D, I``; id -1 and distance ``INT_MAX`` where it
found fewer than k, made ``INT_MAX`` also where HNSW leaves ``INT_MIN``), with the suite's input
checks in front (faiss's Python layer would cast other types to uint8 and answer a narrow query
with a bare ``AssertionError``). ``rank(q, topk)`` is faiss's search with ``k = topk`` (every item
when None; what faiss does not return, id -1, ranks last). faiss's heaps do not fix which of
several items tied at the k-th distance are returned, so ``search(q, k)`` and ``rank(q)`` agree in
the first ``k`` distances and in the items strictly nearer than the k-th distance.
"""
from __future__ import annotations

import numpy as np

from search.base import MISSING_DISTANCE, Index, register_index


class FaissBinaryIndex(Index):
    """Shared construction, search, rank and size of the faiss wrappers. A subclass declares its
    build parameters with their defaults (``build_defaults``), its search parameter with its default
    (``search_defaults``) and how faiss builds it (``build``)."""

    build_defaults: dict = {}
    search_defaults: dict = {}
    #: per search parameter, its valid range ``(low, high)`` (None: unbounded); default ``(0, None)``
    search_ranges: dict = {}
    #: per search parameter, the Python type faiss's attribute takes (default int)
    search_types: dict = {}

    def __init__(self, db_codes: np.ndarray, **params):
        import faiss

        unknown = sorted(set(params) - set(self.build_defaults) - set(self.search_defaults))
        if unknown:
            valid = ", ".join([*self.build_defaults, *self.search_defaults]) or "none"
            raise ValueError(f"index {self.name} has no parameter {unknown[0]!r}; valid: {valid}")
        for name, default in self.build_defaults.items():
            setattr(self, name, params.get(name, default))
        db_codes = self.check_database(db_codes)
        self.index = self.build(faiss, db_codes)
        self.index.add(db_codes)
        self.set_search_params(**{name: params.get(name, default) for name, default in self.search_defaults.items()})

    @property
    def search_param_names(self) -> tuple[str, ...]:
        return tuple(self.search_defaults)

    def build(self, faiss, db_codes):
        """The empty faiss index (trained where it needs training); the codes are added after."""
        raise NotImplementedError

    @classmethod
    def check_search_params(cls, **params) -> dict:
        unknown = sorted(set(params) - set(cls.search_defaults))
        if unknown:
            raise ValueError(f"index {cls.name} has no search parameter {unknown[0]!r}; "
                             f"valid: {', '.join(cls.search_defaults) or 'none'}")
        for name, value in params.items():
            low, high = cls.search_ranges.get(name, (0, None))
            if isinstance(value, bool) and cls.search_types.get(name) is bool:
                value = int(value)  # use_heap=True is faiss's own spelling
            if (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low
                    or (high is not None and value > high)):
                what = ("a non-negative integer" if (low, high) == (0, None) else f"an integer >= {low}"
                        if high is None else f"an integer in [{low}, {high}]")
                raise ValueError(f"{cls.name} {name} must be {what}, got {value!r}")
            params[name] = int(value)
        return dict(params)

    def set_search_params(self, **params):
        hashed = getattr(self.index, "b", None)  # the hash indexes: bits of a bucket key
        if hashed is not None and params.get("nflip", 0) > hashed:  # faiss would enumerate flips forever
            raise ValueError(f"{self.name} nflip must be at most {hashed} (the bits of its hash key), "
                             f"got {params['nflip']!r}")
        super().set_search_params(**params)
        for name in self.search_defaults:
            setattr(self.search_target(), name, self.search_types.get(name, int)(getattr(self, name)))
        return self

    def search_target(self):
        """The faiss object whose attributes are the search parameters."""
        return self.index

    @property
    def nbytes(self) -> int:
        import faiss

        return int(faiss.serialize_index_binary(self.index).nbytes)

    def __len__(self):
        return int(self.index.ntotal)

    def _search(self, query_codes: np.ndarray, k: int):
        distances, ids = self.index.search(query_codes, k)
        distances[ids < 0] = MISSING_DISTANCE  # faiss's HNSW leaves INT_MIN where the others put INT_MAX
        return distances, ids

    def _rank(self, query_codes: np.ndarray, k: int):
        return self._search(query_codes, k)


@register_index("faiss-flat")
class FaissFlat(FaissBinaryIndex):
    """``use_heap=0`` selects the top k by counting distances (faiss's ``hammings_knn_mc``): measured
    2.6x faster than the default heap at K=5000 on 1,000,000 64-bit codes (issue 30). faiss scans
    ``query_batch_size`` queries together against each block of the database."""

    search_defaults = {"use_heap": 1, "query_batch_size": 32}  # faiss's defaults
    search_ranges = {"use_heap": (0, 1), "query_batch_size": (1, None)}  # faiss loops forever on 0
    search_types = {"use_heap": bool}

    def build(self, faiss, db_codes):
        return faiss.IndexBinaryFlat(8 * db_codes.shape[1])


@register_index("faiss-hash")
class FaissHash(FaissBinaryIndex):
    build_defaults = {"hash_bits": 16}
    search_defaults = {"nflip": 0}

    def build(self, faiss, db_codes):
        nbits = 8 * db_codes.shape[1]
        return faiss.IndexBinaryHash(nbits, min(self.hash_bits, nbits))


@register_index("faiss-multihash")
class FaissMultiHash(FaissBinaryIndex):
    build_defaults = {"nhash": 4, "hash_bits": 16}
    search_defaults = {"nflip": 0}

    def build(self, faiss, db_codes):
        nbits = 8 * db_codes.shape[1]
        return faiss.IndexBinaryMultiHash(nbits, self.nhash, min(self.hash_bits, nbits // self.nhash))


@register_index("faiss-ivf")
class FaissIVF(FaissBinaryIndex):
    """A flat binary coarse quantiser of ``nlist`` (default ~ 4 sqrt(n), at least 16 and at most n)
    lists, trained on a seeded sample."""

    build_defaults = {"nlist": None, "seed": 0}
    search_defaults = {"nprobe": 1}

    def build(self, faiss, db_codes):
        n, nbits = len(db_codes), 8 * db_codes.shape[1]
        # a list per database item at most: faiss's k-means refuses fewer points than centroids
        nlist = self.nlist or min(n, int(max(16, min(4096, 4 * np.sqrt(n)))))
        if isinstance(nlist, bool) or not isinstance(nlist, (int, np.integer)) or not 1 <= nlist <= n:
            raise ValueError(f"faiss-ivf nlist must be an integer in [1, {n}] (the database size), got {nlist!r}")
        self.quantizer = faiss.IndexBinaryFlat(nbits)  # kept alive with the index
        index = faiss.IndexBinaryIVF(self.quantizer, nbits, nlist)
        index.cp.seed = self.seed
        index.train(db_codes[np.random.default_rng(self.seed).permutation(n)[: min(n, 50 * nlist)]])
        return index


@register_index("faiss-hnsw")
class FaissHNSW(FaissBinaryIndex):
    build_defaults = {"M": 16}
    search_defaults = {"efSearch": 16}

    def build(self, faiss, db_codes):
        return faiss.IndexBinaryHNSW(8 * db_codes.shape[1], self.M)

    def search_target(self):
        return self.index.hnsw
