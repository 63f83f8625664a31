import os

import pytest

# keep the shared 2-core machine usable while tests run
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def synthetic():
    from datasets import load_dataset

    return load_dataset("synthetic")


@pytest.fixture(scope="session")
def digits():
    from datasets import load_dataset

    return load_dataset("digits")
