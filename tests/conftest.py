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


@pytest.fixture
def budget_rule(tmp_path, monkeypatch):
    """A training-budget rule of the test's own: ``budget_rule({"digits": {...}})`` writes it where runs
    read it (``runner.BUDGET``) and returns its file; models go to a cache of the test's own."""
    import json

    import common.files
    from protocols import runner

    path = tmp_path / "training_budget.json"
    monkeypatch.setattr(runner, "BUDGET", path)
    monkeypatch.setattr(common.files, "CACHE_DIR", tmp_path / "cache")

    def write(datasets: dict):
        path.write_text(json.dumps({"datasets": datasets}))
        return path

    return write


@pytest.fixture(scope="session")
def synthetic():
    from datasets import load_dataset

    return load_dataset("synthetic")


@pytest.fixture(scope="session")
def digits():
    from datasets import load_dataset

    return load_dataset("digits")


def write_mini_photos(folder, width=10, per_class=(2, 4, 6), n_classes=10, size=32, fmt="png"):
    """A mini photo dataset in HashNet's list format, from real images: Fashion-MNIST (else
    scikit-learn's digits, upscaled), saved as image files with ``test.txt`` / ``train.txt`` /
    ``database.txt`` (``per_class`` = queries, training and database images per class; labels
    one-hot of ``width``). Returns the folder."""
    from pathlib import Path

    import numpy as np
    from PIL import Image

    folder = Path(folder)
    try:
        from datasets import DatasetError
        from datasets.builtin import fashion_mnist_images

        images, classes, _ = fashion_mnist_images(allow_download=False)
    except DatasetError:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images, classes = (bunch.images * 255 / 16).astype(np.uint8), bunch.target
    rng = np.random.default_rng(0)
    for name, count in zip(("test", "train", "database"), per_class):
        lines = []
        for c in range(n_classes):
            for j, i in enumerate(rng.choice(np.flatnonzero(classes == c), count, replace=False)):
                rel = f"{name}/c{c}/{j}.{fmt}"
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(images[i]).resize((size, size), Image.BILINEAR).convert("RGB").save(folder / rel)
                label = ["0"] * width
                label[c] = "1"
                lines.append(f"{rel} {' '.join(label)}")
        (folder / f"{name}.txt").write_text("\n".join(lines) + "\n")
    return folder
