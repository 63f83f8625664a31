"""One place that pins the thread counts of torch, BLAS (through threadpoolctl), OpenMP, faiss and
numba (the compiled tree and scans)."""
from __future__ import annotations

import contextlib
import os


def pin_threads(n: int) -> None:
    """Use ``n`` threads from now on in every library that parallelises (PROTOCOL.md's timings use
    one); a deep model's weights depend on torch's count, so training pins it too."""
    import faiss
    import numba
    import torch
    from threadpoolctl import threadpool_limits

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"the thread count must be a positive integer, got {n!r}")
    os.environ["OMP_NUM_THREADS"] = str(n)
    threadpool_limits(n)
    torch.set_num_threads(n)
    faiss.omp_set_num_threads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))  # numba refuses more than it started with


def torch_thread_count() -> int:
    import torch

    return torch.get_num_threads()


@contextlib.contextmanager
def torch_threads(n: int | None):
    """torch's CPU threads set to ``n`` inside the block and restored after (``None``: unchanged)."""
    import torch

    if not n:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)
