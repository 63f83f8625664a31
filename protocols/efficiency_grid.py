"""Table II's grid as data: the rows (indexes and reference scans), their builds and search settings.

:func:`default_grid` lists every row a run measures, each a :class:`GridRow`: whose codes it searches,
the registry index it builds (or a reference scan of :data:`SCANS`), and the build and search settings
a user would tune (issue 30), as tuples or as functions of the :class:`Scale`. A new index is timed
in Table II by adding its row here (CONTRIBUTING.md).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from protocols.efficiency_measure import chunked, numpy_scan, popcount_floor


@dataclass(frozen=True)
class Scale:
    """What a grid's settings depend on: the database size, the code length and K."""

    size: int
    nbits: int
    topk: int


@dataclass(frozen=True)
class GridRow:
    """One family of Table II rows. ``row`` names it in the CSV; ``side`` says whose codes it
    searches (``baseline``: the baseline method's codes; ``tree``: the tree method's multi-level
    codes); ``index`` is a registry index (:mod:`search`), built once per entry of ``builds`` (named
    in each row's ``params``) with the ``fixed`` build arguments and the method's own build
    parameters, then searched at each entry of ``searches``; or None for a reference scan of
    :data:`SCANS`. ``builds`` and ``searches`` are tuples of dicts, or functions giving them from the
    :class:`Scale` (``searches`` also from the build: IVF's nprobe is at most its nlist). ``cost``
    sizes the plan (:func:`protocols.efficiency_plan.search_seconds`); ``always``: the baseline, never
    left out for time; ``max_size``: the largest database it runs on."""

    row: str
    side: str
    index: str | None = None
    searches: object = ({},)
    builds: object = ({},)
    fixed: tuple = ()
    cost: tuple = ("flat", 1.0)
    always: bool = False
    max_size: int | None = None

    def settings(self, scale: Scale) -> list[tuple[dict, list[dict]]]:
        """``[(build, [search, ...]), ...]`` at ``scale``, in the order the rows are shown."""
        builds = self.builds(scale) if callable(self.builds) else self.builds
        return [(dict(build), [dict(s) for s in (self.searches(scale, build) if callable(self.searches)
                                                 else self.searches)]) for build in builds]


def setting_label(build: dict, search: dict) -> str:
    """A row's ``params``: its build settings, then its search settings (``nlist=1000,nprobe=4``)."""
    return ",".join(f"{name}={value}" for name, value in {**build, **search}.items())


def _hash_builds(scale: Scale):
    # a quarter, three eighths and half the code as the bucket key (16, 24 and 32 of 64 bits)
    return [{"hash_bits": b} for b in sorted({max(1, scale.nbits * eighths // 8) for eighths in (2, 3, 4)})]


def _multihash_builds(scale: Scale):
    # multi-index hashing's disjoint substrings: 2, 4 or 8 tables of nbits / nhash bits
    return [{"nhash": h, "hash_bits": scale.nbits // h} for h in (2, 4, 8) if scale.nbits // h >= 1]


def _flips(scale: Scale, build: dict, most: int):
    return [{"nflip": f} for f in range(most + 1) if f <= build["hash_bits"]]


#: MultiHash's ms/query over faiss flat's (its default setting) at 1,000,000 Fashion-MNIST codes, by
#: (tables, flips): the candidates it verifies grow with both (2-core Intel Xeon, 2026-12-06)
MULTIHASH_FLAT_FACTORS = {(2, 0): 4.5, (2, 1): 4.6, (2, 2): 5.2, (4, 0): 5.9, (4, 1): 9.1, (4, 2): 12.7,
                          (8, 0): 14.1, (8, 1): 41.9, (8, 2): 78.8}


def _multihash_factor(build: dict, setting: dict) -> float:
    # layouts not measured (other code lengths): the largest factor measured at that many flips
    key = (build.get("nhash"), setting.get("nflip", 0))
    return MULTIHASH_FLAT_FACTORS.get(key, max(v for (_, f), v in MULTIHASH_FLAT_FACTORS.items() if f == key[1]))


def _ivf_builds(scale: Scale):
    # issue 30: sqrt(n), 4 sqrt(n) and 16 sqrt(n) lists (faiss's k-means needs a point per list)
    return [{"nlist": nlist} for nlist in sorted({min(scale.size, max(1, round(f * math.sqrt(scale.size))))
                                                  for f in (1, 4, 16)})]


def _ivf_probes(scale: Scale, build: dict):
    return [{"nprobe": p} for p in (1, 4, 16, 64, 256, 1024) if p <= build["nlist"]]


def default_grid(topk: int, keep_ratios, tree_method: str = "hdhash", seed: int = 0) -> list[GridRow]:
    """Table II's rows: the scans and faiss's indexes on the baseline's codes, each over the build and
    search settings a user would tune (issue 30), the tree on the tree method's codes (beside faiss's
    flat scan of the same codes). Costs: ms at 1,000,000 codes in the stored Table II (see the
    constants of :mod:`protocols.efficiency_plan`)."""
    return [
        GridRow("numpy-scan", "baseline", cost=("scan", 12.7e-9)),
        # faiss's default first (use_heap on, 32 queries a block): counting selection and the block
        # size beside it; one query at a time is every row's single-query column
        GridRow("faiss-flat", "baseline", "faiss-flat", always=True,
                searches=tuple({"use_heap": heap, "query_batch_size": block} for heap in (1, 0)
                               for block in (32, 1, 256))),
        GridRow("faiss-hash", "baseline", "faiss-hash", builds=_hash_builds,
                searches=lambda scale, build: _flips(scale, build, 3), cost=("flat", 0.35)),
        GridRow("faiss-multihash", "baseline", "faiss-multihash", builds=_multihash_builds,
                searches=lambda scale, build: _flips(scale, build, 2), cost=("flat", _multihash_factor)),
        GridRow("faiss-ivf", "baseline", "faiss-ivf", builds=_ivf_builds, searches=_ivf_probes,
                fixed=(("seed", seed),), cost=("flat", 0.25)),
        # issue 30: HNSW up to 10^7 codes (its graph at 10^8 outgrows this machine's memory)
        GridRow("faiss-hnsw", "baseline", "faiss-hnsw", builds=({"M": 16}, {"M": 32}),
                searches=({"efSearch": topk}, {"efSearch": 2 * topk}), cost=("graph", 6.1), max_size=10**7),
        GridRow(f"{tree_method}-flat", "tree", "faiss-flat"),
        GridRow(f"{tree_method}-tree", "tree", "tree", searches=tuple({"keep_ratio": r} for r in keep_ratios),
                cost=("flat", 0.45)),
        # every node a candidate (keep 1.0), a budget of codes instead: multiples of K
        GridRow(f"{tree_method}-tree-budget", "tree", "tree",
                searches=tuple({"max_codes": m * topk} for m in (1, 2, 5, 10, 20, 50, 100)),
                fixed=(("keep_ratio", 1.0),), cost=("flat", 0.4)),
        GridRow("exhaustive", "baseline", "hamming", cost=("scan", 1.7e-9)),  # the compiled exhaustive top-K
        GridRow("exhaustive-full", "baseline", cost=("scan", 13.9e-9)),
        GridRow("popcount-floor", "baseline", cost=("scan", 1.0e-9)),
    ]


def _full_ranking(codes, topk):
    """The MAP@all path: a full stable ranking of the database, cut at K."""
    from search.hamming import HammingIndex

    index = HammingIndex(codes)
    # rank(q, topk) returns the head as its own array: a view of each chunk's full ranking would
    # keep every chunk's (16, n) order alive until the concatenation (8 GB at 1,000,000 codes)
    return chunked(lambda q: index.rank(q, topk)[1])


#: reference scans that are not indexes: ``(codes, topk) -> search(query_codes) -> ids``
SCANS = {
    "numpy-scan": lambda codes, topk: chunked(numpy_scan(codes, topk)),
    "exhaustive-full": _full_ranking,
    "popcount-floor": lambda codes, topk: popcount_floor(codes),
}

