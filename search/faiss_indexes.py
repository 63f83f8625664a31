"""faiss's binary indexes behind the suite's :class:`search.base.Index` interface.

``faiss-flat`` (``IndexBinaryFlat``, the exhaustive SIMD scan every speedup is quoted against),
``faiss-hash`` (``IndexBinaryHash``: buckets on the first ``hash_bits`` bits, probing ``nflip``
flipped bits), ``faiss-multihash`` (``IndexBinaryMultiHash``: ``nhash`` tables on disjoint
substrings, multi-index hashing), ``faiss-ivf`` (``IndexBinaryIVF``, ``nprobe`` of ``nlist`` lists)
and ``faiss-hnsw`` (``IndexBinaryHNSW``, ``efSearch``). ``nbytes`` is faiss's serialised size
(codes, ids and structure). Threads are the caller's business (:func:`common.threads.pin_threads`).

``rank(q, topk)`` is faiss's search with ``k = topk`` (every item when None; what faiss does not
return, id -1, ranks last). faiss's heaps do not fix which of several items tied at the k-th
distance are returned, so ``search(q, k)`` and ``rank(q)[:, :k]`` agree in distances and in the
items strictly nearer than the k-th distance.
"""
from __future__ import annotations

import numpy as np

from search.base import Index, register_index


class FaissBinaryIndex(Index):
    """Shared search, rank and size of the faiss wrappers; a subclass builds ``self.index``."""

    def __init__(self, db_codes: np.ndarray, **search_params):
        import faiss

        self.index = self.build(faiss, np.ascontiguousarray(db_codes, dtype=np.uint8))
        for name in self.search_param_names:
            search_params.setdefault(name, self.default_search_params[name])
        self.set_search_params(**search_params)

    default_search_params: dict = {}

    def build(self, faiss, db_codes):
        raise NotImplementedError

    def set_search_params(self, **params):
        super().set_search_params(**params)
        self.apply_search_params()
        return self

    def apply_search_params(self):
        for name in self.search_param_names:
            setattr(self.index, name, int(getattr(self, name)))

    @classmethod
    def check_search_params(cls, **params) -> dict:
        params = super().check_search_params(**params)
        for name, value in params.items():
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"{cls.name} {name} must be a non-negative integer, got {value!r}")
        return params

    @property
    def nbytes(self) -> int:
        import faiss

        return int(faiss.serialize_index_binary(self.index).nbytes)

    def __len__(self):
        return int(self.index.ntotal)

    def search(self, query_codes: np.ndarray, k: int):
        distances, ids = self.index.search(np.ascontiguousarray(query_codes, dtype=np.uint8), int(k))
        return ids, distances

    def rank(self, query_codes: np.ndarray, topk: int | None = None):
        return self.search(query_codes, len(self) if topk is None else min(int(topk), len(self)))


@register_index("faiss-flat")
class FaissFlat(FaissBinaryIndex):
    def build(self, faiss, db_codes):
        index = faiss.IndexBinaryFlat(8 * db_codes.shape[1])
        index.add(db_codes)
        return index


@register_index("faiss-hash")
class FaissHash(FaissBinaryIndex):
    search_param_names = ("nflip",)
    default_search_params = {"nflip": 0}

    def __init__(self, db_codes, hash_bits: int = 16, **search_params):
        self.hash_bits = hash_bits
        super().__init__(db_codes, **search_params)

    def build(self, faiss, db_codes):
        nbits = 8 * db_codes.shape[1]
        index = faiss.IndexBinaryHash(nbits, min(self.hash_bits, nbits))
        index.add(db_codes)
        return index


@register_index("faiss-multihash")
class FaissMultiHash(FaissBinaryIndex):
    search_param_names = ("nflip",)
    default_search_params = {"nflip": 0}

    def __init__(self, db_codes, nhash: int = 4, hash_bits: int = 16, **search_params):
        self.nhash, self.hash_bits = nhash, hash_bits
        super().__init__(db_codes, **search_params)

    def build(self, faiss, db_codes):
        nbits = 8 * db_codes.shape[1]
        index = faiss.IndexBinaryMultiHash(nbits, self.nhash, min(self.hash_bits, nbits // self.nhash))
        index.add(db_codes)
        return index


@register_index("faiss-ivf")
class FaissIVF(FaissBinaryIndex):
    """A flat binary coarse quantiser of ``nlist`` ~ 4 sqrt(n) lists, trained on a seeded sample."""

    search_param_names = ("nprobe",)
    default_search_params = {"nprobe": 1}

    def __init__(self, db_codes, nlist: int | None = None, seed: int = 0, **search_params):
        self.nlist, self.seed = nlist, seed
        super().__init__(db_codes, **search_params)

    def build(self, faiss, db_codes):
        n, nbits = len(db_codes), 8 * db_codes.shape[1]
        nlist = self.nlist or int(max(16, min(4096, 4 * np.sqrt(n))))
        self.quantizer = faiss.IndexBinaryFlat(nbits)  # kept alive with the index
        index = faiss.IndexBinaryIVF(self.quantizer, nbits, nlist)
        index.cp.seed = self.seed
        index.train(db_codes[np.random.default_rng(self.seed).permutation(n)[: min(n, 50 * nlist)]])
        index.add(db_codes)
        return index


@register_index("faiss-hnsw")
class FaissHNSW(FaissBinaryIndex):
    search_param_names = ("efSearch",)
    default_search_params = {"efSearch": 16}

    def __init__(self, db_codes, M: int = 16, **search_params):
        self.M = M
        super().__init__(db_codes, **search_params)

    def build(self, faiss, db_codes):
        index = faiss.IndexBinaryHNSW(8 * db_codes.shape[1], self.M)
        index.add(db_codes)
        return index

    def apply_search_params(self):
        self.index.hnsw.efSearch = int(self.efSearch)
