"""faiss's binary indexes behind one small interface, for the efficiency protocol.

Each builder returns an object with ``search(query_codes, k) -> (ids, distances)``,
``set_param(value)`` for its search parameter, ``nbytes`` (faiss's serialised size: codes, ids and
structure) and ``name``. Threads are the caller's business (``faiss.omp_set_num_threads``).
"""
from __future__ import annotations

import numpy as np


class FaissBinary:
    def __init__(self, name: str, index, param_name: str | None = None, setter=None):
        self.name, self.index, self.param_name, self._setter = name, index, param_name, setter
        self.param = None

    def set_param(self, value):
        if self._setter is not None:
            self._setter(self.index, value)
        self.param = value
        return self

    @property
    def params_text(self) -> str:
        return "" if self.param_name is None else f"{self.param_name}={self.param}"

    @property
    def nbytes(self) -> int:
        import faiss

        return int(faiss.serialize_index_binary(self.index).nbytes)

    def search(self, query_codes: np.ndarray, k: int):
        distances, ids = self.index.search(np.ascontiguousarray(query_codes, dtype=np.uint8), k)
        return ids, distances


def build_flat(db_codes: np.ndarray) -> FaissBinary:
    import faiss

    index = faiss.IndexBinaryFlat(8 * db_codes.shape[1])
    index.add(db_codes)
    return FaissBinary("faiss-flat", index)


def build_hash(db_codes: np.ndarray, hash_bits: int = 16) -> FaissBinary:
    """IndexBinaryHash: buckets on the first ``hash_bits`` bits, probing ``nflip`` flipped bits."""
    import faiss

    nbits = 8 * db_codes.shape[1]
    index = faiss.IndexBinaryHash(nbits, min(hash_bits, nbits))
    index.add(db_codes)
    return FaissBinary("faiss-hash", index, "nflip", lambda ix, v: setattr(ix, "nflip", int(v)))


def build_multihash(db_codes: np.ndarray, nhash: int = 4, hash_bits: int = 16) -> FaissBinary:
    """IndexBinaryMultiHash: ``nhash`` tables on disjoint ``hash_bits``-bit substrings (multi-index hashing)."""
    import faiss

    nbits = 8 * db_codes.shape[1]
    index = faiss.IndexBinaryMultiHash(nbits, nhash, min(hash_bits, nbits // nhash))
    index.add(db_codes)
    return FaissBinary("faiss-multihash", index, "nflip", lambda ix, v: setattr(ix, "nflip", int(v)))


def build_ivf(db_codes: np.ndarray, nlist: int | None = None, seed: int = 0) -> FaissBinary:
    """IndexBinaryIVF with a flat binary coarse quantiser of ``nlist`` ~ 4 sqrt(n) lists."""
    import faiss

    n, nbits = len(db_codes), 8 * db_codes.shape[1]
    nlist = nlist or int(max(16, min(4096, 4 * np.sqrt(n))))
    quantizer = faiss.IndexBinaryFlat(nbits)
    index = faiss.IndexBinaryIVF(quantizer, nbits, nlist)
    index.cp.seed = seed
    train = db_codes[np.random.default_rng(seed).permutation(n)[: min(n, 50 * nlist)]]
    index.train(train)
    index.add(db_codes)
    wrapper = FaissBinary("faiss-ivf", index, "nprobe", lambda ix, v: setattr(ix, "nprobe", int(v)))
    wrapper._quantizer = quantizer  # keep the Python object alive with the index
    return wrapper


def build_hnsw(db_codes: np.ndarray, M: int = 16) -> FaissBinary:
    import faiss

    index = faiss.IndexBinaryHNSW(8 * db_codes.shape[1], M)
    index.add(db_codes)
    return FaissBinary("faiss-hnsw", index, "efSearch", lambda ix, v: setattr(ix.hnsw, "efSearch", int(v)))
