import os

import pytest

# One thread everywhere: on a shared 2-core machine, oversubscribed BLAS/OpenMP threads made some
# fits 5x slower (KSH on digits: 17.5 s with 2 threads against 3.2 s with 1).
os.environ["OMP_NUM_THREADS"] = "1"


@pytest.fixture(scope="session", autouse=True)
def single_thread():
    import faiss
    import torch
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def synthetic():
    from datasets import load_dataset

    return load_dataset("synthetic")


@pytest.fixture(scope="session")
def digits():
    from datasets import load_dataset

    return load_dataset("digits")
