"""One place that pins the thread counts of torch, BLAS (through threadpoolctl), OpenMP, faiss and
numba (the compiled tree and scans)."""
from __future__ import annotations

import contextlib
import functools
import os
import threading


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


# Subnormal floats (below 1.2e-38) are handled in microcode on x86: a multiply-add on one costs ~100
# cycles instead of ~1. Training with weight decay drives dead weights there: a fashion-mosaic
# classifier checkpoint (x27, epoch 96) held 30,911 subnormal weights of 91,994, and a forward pass
# of 1,024 mosaics took 3.26 s against 0.27 s with them flushed (0.27 s for fresh weights; one thread,
# Intel Xeon). Flushing them (FTZ/DAZ) moves outputs by at most ~5e-40 there, but it does change a
# run: a 150-epoch Fashion-MNIST HDHash ended at loss 1.8313 with them flushed against 1.8298, like a
# run on another CPU model, so the model cache names the mode (methods/deep_method.py, cache_config).
_flush_depth = threading.local()


@functools.cache
def flushes_subnormals() -> bool:
    """Whether torch can flush subnormals on this CPU (x86 with SSE3, recent ARM)."""
    with subnormals_flushed() as supported:
        return supported


def subnormals_flushing() -> bool:
    """Whether this thread is inside :func:`subnormals_flushed` on a CPU that supports it (what a
    trained model's ``fit_info`` then says: ``"subnormals": "flushed"``)."""
    return getattr(_flush_depth, "depth", 0) > 0 and _flush_depth.supported


@contextlib.contextmanager
def subnormals_flushed():
    """torch's CPU float math with subnormal numbers flushed to zero inside the block; yields whether
    the CPU supports it. Nested blocks keep it on until the outermost ends, which turns it off again
    on this thread. The mode is a thread's: torch's intra-op threads started inside the block inherit
    it (a process's first multi-threaded op, in a script), but a pool started before keeps its own
    (measured with 2 threads: 1.00 s against 2.81 s a pass when turned on before or after the pool
    started), so one thread (the grids' and Table II's ``--threads 1``) is the case it always covers."""
    import torch

    depth = getattr(_flush_depth, "depth", 0)
    supported = torch.set_flush_denormal(True) if depth == 0 else _flush_depth.supported
    _flush_depth.depth, _flush_depth.supported = depth + 1, supported
    try:
        yield supported
    finally:
        _flush_depth.depth = depth
        if depth == 0 and supported:
            torch.set_flush_denormal(False)
