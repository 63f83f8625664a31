"""OPQ: optimised product quantisation (Ge, He, Ke & Sun, CVPR 2013), through faiss.

A rotation ``R`` and a product quantiser with ``M = nbits / 8`` sub-quantisers of 256 centroids
(8 bits each) minimising the quantisation distortion ``||R x - c(R x)||^2``; the
non-parametric solution (the paper's Sec. 3) alternates PQ training and the orthogonal Procrustes update of
``R``: ``faiss.OPQMatrix``. A final ``faiss.IndexPQ`` is trained on the rotated training data, as
faiss's ``"OPQM,PQM"`` factory string does. Codes are the ``M`` one-byte centroid indices, so
``nbits / 8`` bytes like every hashing method.

Search is asymmetric (ADC, Jegou et al. 2011): a query stays a float vector (rotated), and the
distance to a database item is ``sum_m ||q_m - c_m[code_m]||^2`` through per-query lookup tables.
"""
from __future__ import annotations

import faiss
import numpy as np

from methods import register
from methods.base import HashMethod, Int, as_features, check_nbits, random_rotation
from search import SearchMode


@register("opq")
class OPQ(HashMethod):
    """Optimised product quantisation with asymmetric-distance search.

    Parameters: ``niter`` (50 alternations), ``niter_pq`` (4 k-means iterations per alternation,
    40 in the first: ``niter_pq_0``), ``pq_iter`` (25 k-means iterations of the final PQ): faiss's
    defaults. Differences from the paper, both faiss's: the rotation starts from a random
    orthogonal matrix (drawn here from ``random_state``; faiss would use a fixed seed) rather than
    the paper's parametric (eigenvalue-allocation) solution, and the training data are centred
    for learning ``R`` only.

    The PQ dimension must be a multiple of ``M``: when the feature dimension ``d`` is not (784 for
    ``M = 6``), ``OPQMatrix`` maps to ``d_out = ceil(d / M) * M`` dimensions, padding the input with
    zeros before the rotation (faiss's own support for ``d_out > d_in``), so no information is
    dropped; ``fit_info_["d_out"]`` records it.

    ``max_dim`` (1024): inputs with more dimensions are first projected by PCA, fitted on the
    training data, to ``max_dim`` dimensions (the ``"PCA1024,OPQM,PQM"`` chain in faiss's terms;
    ``None`` never projects). Why: every OPQ alternation rotates the data and solves a
    ``d x d`` Procrustes SVD, so the cost grows as d^3; on the 3,136-pixel fashion-mosaic images one
    16-bit fit did not finish in 5 minutes, where 784-pixel Fashion-MNIST takes under 30 s at
    64 bits. At 784 dimensions nothing changes. ``fit_info_["pca_dim"]`` records the projection.

    Learned attributes: ``pca_`` (the faiss ``PCAMatrix`` or ``None``), ``opq_`` (the faiss
    ``OPQMatrix``), ``pq_`` (the faiss ``ProductQuantizer``), ``centroids_`` (M, 256, d_out / M)
    float32 (a copy used for the distance tables).
    """

    paper_table1 = True

    param_rules = {"niter": Int(1), "niter_pq": Int(1), "niter_pq_0": Int(1), "pq_iter": Int(1),
                   "max_dim": Int(1, none=True)}
    searches = (SearchMode("adc"),)
    fast_params = {"niter": 4, "niter_pq": 2, "niter_pq_0": 4, "pq_iter": 5}

    def __init__(self, nbits: int = 32, random_state: int = 0, niter: int = 50, niter_pq: int = 4,
                 niter_pq_0: int = 40, pq_iter: int = 25, max_dim: int | None = 1024):
        super().__init__(nbits=nbits, random_state=random_state)
        self.max_dim = max_dim
        self.niter = niter
        self.niter_pq = niter_pq
        self.niter_pq_0 = niter_pq_0
        self.pq_iter = pq_iter

    def _seeded_pq(self, d_out: int, M: int, seed: int, niter: int | None = None):
        pq = faiss.ProductQuantizer(d_out, M, 8)
        pq.cp.seed = seed
        pq.cp.min_points_per_centroid = 1  # only silences faiss's "provide more points" warning
        if niter is not None:
            pq.cp.niter = niter
        return pq

    def fit(self, X, y=None):
        nbits = check_nbits(self.nbits)
        X = np.ascontiguousarray(as_features(X), dtype=np.float32)
        n, dim = X.shape
        M = nbits // 8
        if n < 256:
            raise ValueError(f"OPQ trains 256 centroids per sub-quantiser: needs >= 256 training items, "
                             f"got {n}")
        if self.max_dim is not None and int(self.max_dim) < 1:
            raise ValueError(f"OPQ max_dim must be a positive number of dimensions or None, got {self.max_dim}")
        pca = None
        if self.max_dim is not None and dim > int(self.max_dim):
            pca = faiss.PCAMatrix(dim, int(self.max_dim))
            pca.train(X)
            X = pca.apply(X)
            dim = X.shape[1]
        d_out = -(-dim // M) * M
        rng = np.random.default_rng(self.random_state)
        seeds = rng.integers(0, 2 ** 31 - 1, size=2)
        opq = faiss.OPQMatrix(dim, M, d_out)
        opq.niter = self.niter
        opq.niter_pq = self.niter_pq
        opq.niter_pq_0 = self.niter_pq_0
        # faiss draws the starting rotation from a fixed seed unless A is set: set it from ours
        start = random_rotation(d_out, rng).T.astype(np.float32)
        faiss.copy_array_to_vector(np.ascontiguousarray(start).ravel(), opq.A)
        training_pq = self._seeded_pq(d_out, M, int(seeds[0]))
        opq.pq = training_pq  # faiss keeps a raw pointer: training_pq must outlive train()
        opq.train(X)
        opq.pq = None
        pq = self._seeded_pq(d_out, M, int(seeds[1]), niter=self.pq_iter)
        pq.train(opq.apply(X))
        self.pca_ = pca
        self.opq_ = opq
        self.pq_ = pq
        self.centroids_ = faiss.vector_to_array(pq.centroids).reshape(M, pq.ksub, pq.dsub).copy()
        self.fit_info_ = {"d_out": d_out, "M": M, "pca_dim": None if pca is None else dim}
        return self

    def encode_queries(self, X) -> np.ndarray:
        """Queries for ADC: rotated float32 vectors (n, d_out)."""
        self._check_fitted("pq_")
        X = np.ascontiguousarray(as_features(X), dtype=np.float32)
        return self.opq_.apply(X if self.pca_ is None else self.pca_.apply(X))

    def encode(self, X) -> np.ndarray:
        """PQ codes, one byte (a centroid index) per sub-quantiser: uint8 (n, nbits / 8)."""
        self._check_fitted("pq_")
        return self.pq_.compute_codes(self.encode_queries(X))

    def index_build_params(self, index: str) -> dict:
        self._check_fitted("pq_")
        return {"centroids": self.centroids_}
