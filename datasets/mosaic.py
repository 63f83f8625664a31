"""``fashion-mosaic``: a multi-label dataset built from real Fashion-MNIST images.

Each item is a 2x2 mosaic (56x56, grayscale) of four Fashion-MNIST images; its multi-hot label is
the set of classes present. Per mosaic, the number of distinct classes is drawn uniformly from
{1, 2, 3}, the classes uniformly without replacement, each chosen class fills at least one tile,
the remaining tiles take one of the chosen classes at random, and the tiles are placed in a random
order. Tile images are taken per class from a seeded permutation of the 70,000 Fashion-MNIST images,
cycling (each image is used at most twice in 20,000 mosaics). With one to three classes per item, two
random items share a label about a third of the time (measured: 36.5 % of query-database pairs), so MAP separates
methods (with four independent tiles nearly every pair would be relevant).

The mosaics are fixed (``default_rng(MOSAIC_SEED)``); only the split follows ``seed``:
``random_split`` with 1,000 queries and 5,000 training items, database = all but the queries
(19,000), MAP@5000 as NUS-WIDE (PROTOCOL.md's multi-label protocol, relevance = a shared label).
"""
from __future__ import annotations

import numpy as np

from datasets import Dataset, random_split, register_dataset

MOSAIC_SEED = 2020
N_MOSAICS = 20_000
N_QUERY, N_TRAIN, TOPK = 1_000, 5_000, 5_000


def make_mosaics(images: np.ndarray, classes: np.ndarray, n: int, seed: int = MOSAIC_SEED, n_classes: int = 10):
    """``(mosaics (n, 1, 2h, 2w) float32 in [0, 1], labels (n, n_classes) bool, tile ids (n, 4))``."""
    rng = np.random.default_rng(seed)
    pools = {c: rng.permutation(np.flatnonzero(classes == c)) for c in range(n_classes)}
    cursor = dict.fromkeys(range(n_classes), 0)
    h, w = images.shape[-2:]
    mosaics = np.empty((n, 1, 2 * h, 2 * w), dtype=np.float32)
    labels = np.zeros((n, n_classes), dtype=bool)
    tiles = np.empty((n, 4), dtype=np.int64)
    for i in range(n):
        k = int(rng.integers(1, 4))
        chosen = rng.choice(n_classes, size=k, replace=False)
        tile_classes = np.concatenate([chosen, rng.choice(chosen, size=4 - k)])
        rng.shuffle(tile_classes)
        for t, c in enumerate(tile_classes):
            pool = pools[int(c)]
            tiles[i, t] = pool[cursor[int(c)] % len(pool)]
            cursor[int(c)] += 1
        labels[i, chosen] = True
    for t, (y, x) in enumerate(((0, 0), (0, w), (h, 0), (h, w))):
        mosaics[:, 0, y:y + h, x:x + w] = images[tiles[:, t]]
    return mosaics, labels, tiles


@register_dataset("fashion-mosaic")
def load_fashion_mosaic(data_root=None, seed=0) -> Dataset:
    from datasets.builtin import fashion_mnist_images

    images, classes, folder = fashion_mnist_images(data_root)
    mosaics, labels, _ = make_mosaics(images.astype(np.float32) / 255.0, classes, N_MOSAICS)
    split = random_split(N_MOSAICS, N_QUERY, N_TRAIN, seed)
    return Dataset("fashion-mosaic", mosaics, labels, split, topk=TOPK, multilabel=True,
                   info={"root": str(folder), "mosaic_seed": MOSAIC_SEED})
