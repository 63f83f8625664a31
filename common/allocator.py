"""Keep freed memory in the process instead of handing it back to the OS after every batch.

glibc's malloc serves allocations above its mmap threshold (128 KiB, rising with use to at most
32 MiB) with a fresh ``mmap`` and gives them back on ``free``, and trims the heap's top above 128 KiB.
A training loop allocates and frees the same few-MiB activation tensors every step, so each step
faults its pages in anew from the kernel: about 210,000-540,000 minor page faults a second, half
the CPU's time in the kernel, on this project's 2-core machine. Dask's workers make it worse: their
nanny sets ``MALLOC_TRIM_THRESHOLD_=65536`` before spawning them.

Measured (HDHash over DPSH's loss on fashion-mosaic, 150 epochs, one Dask worker with both threads,
the same machine and command): 10-11 s an epoch with Dask's setting, 4.8-5.7 s with the settings below.
Compact-CNN alone at 56x56 (batch 64, 2 threads): 43-46 ms a training step against 31 ms, and
590 against 450 ms to encode 1,024 images.

Only the allocator changes, never a computed number: stored models and codes are the same.
"""
from __future__ import annotations

import ctypes
import platform

# mallopt's parameter numbers (glibc's malloc.h)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

#: below this an allocation comes from the heap and is reused; glibc refuses more than 32 MiB
MMAP_THRESHOLD = 32 << 20
#: freed memory at the heap's top is kept up to this much (the largest value mallopt accepts)
TRIM_THRESHOLD = 2**31 - 1
#: the heap grows by this much more than asked, so a growing batch does not grow it step by step;
#: address space only: pages count against memory once written
TOP_PAD = 512 << 20

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Set glibc's malloc to reuse freed memory (see the module docstring) for the rest of the
    process; ``True`` where it took effect, ``False`` where the C library is not glibc. Idempotent."""
    global _applied
    if _applied is None:
        _applied = _mallopt_all()
    return _applied


def on_glibc() -> bool:
    """Whether this process runs on glibc, the C library whose ``mallopt`` is set here."""
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def _mallopt_all() -> bool:
    if not on_glibc():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in ((_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
                                                               (_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
                                                               (_M_TOP_PAD, TOP_PAD)))
