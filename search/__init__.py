"""Search: every index behind one interface (:mod:`search.base`), built by name.

``hamming`` (exhaustive scan, :mod:`search.hamming`), ``tree`` (HDHash's coarse-to-fine tree,
:mod:`search.tree`), ``adc`` (asymmetric distance over PQ codes, :mod:`search.adc`) and faiss's
binary indexes (:mod:`search.faiss_indexes`); compiled query loops in :mod:`search.kernels`.
``search`` imports :mod:`common` only.
"""
from search import adc, faiss_indexes, hamming, tree  # noqa: E402,F401  (each registers its indexes)
from search.base import Index, SearchMode, create_index, get_index_class, list_indexes, register_index  # noqa: F401
