"""common.allocator: freed memory is reused instead of faulted in anew (counted in minor page faults,
not timed). Each case runs in its own interpreter: the setting lasts for the process."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.allocator import on_glibc

ROOT = Path(__file__).resolve().parents[1]

# 1 MiB arrays: above glibc's starting mmap threshold (128 KiB), below numpy's 4 MiB huge-page advice
CHURN = """
import resource, sys
import numpy as np
if sys.argv[1] == "keep":
    from common.allocator import keep_freed_memory
    assert keep_freed_memory() and keep_freed_memory()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(200):
    a = np.ones(1 << 18, dtype=np.float32)
    del a
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    # Dask's nanny starts its workers with this setting (distributed.nanny.pre-spawn-environ)
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", CHURN, mode], env=env, capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(not on_glibc(), reason="glibc's mallopt")
def test_freed_memory_is_reused_not_faulted_in_again():
    default, kept = _faults("default"), _faults("keep")
    assert default > 200 * 200  # each 1 MiB array (256 pages) faulted in anew
    assert kept < default / 10
