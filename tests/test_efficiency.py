"""protocols.efficiency at a tiny size: every column, sane values, seeded augmentation."""
import numpy as np
import pandas as pd

import common.files
from protocols import efficiency

COLUMNS = ["index", "params", "code_bits", "db_size", "topk", "ms_per_query", "ms_per_query_single", "recall",
           "map", "index_bytes", "peak_rss_mb", "build_s"]


def test_augmentation_is_seeded_and_keeps_range(synthetic):
    images = synthetic.X[:50]
    a = efficiency.augment(images, efficiency.copy_rng(0, 1))
    b = efficiency.augment(images, efficiency.copy_rng(0, 1))
    c = efficiency.augment(images, efficiency.copy_rng(0, 2))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.shape == images.shape and a.min() >= 0 and a.max() <= 1
    assert not np.array_equal(a, np.clip(images, 0, 1))


def test_small_run_writes_every_column(tmp_path, monkeypatch):
    monkeypatch.setattr(common.files, "CACHE_DIR", tmp_path / "cache")
    out = tmp_path / "results"
    argv = ["--dataset", "synthetic", "--baseline", "lsh", "--tree-method", "hdhash", "--bits", "16",
            "--param", "epochs=1", "--param", "progress=False",
            "--db-sizes", "1000,4000", "--topk", "50", "--repeats", "1", "--timing-queries", "20",
            "--single-queries", "2", "--keep-ratios", "0.3,1.0", "--skip", "faiss-hnsw", "--out", str(out)]
    assert efficiency.main(argv) == 0
    frame = pd.read_csv(out / "efficiency" / "synthetic.csv")
    assert set(COLUMNS) <= set(frame.columns)
    assert set(frame["db_size"]) == {1000, 4000}  # 4000 > 1800 database items: transformed copies were encoded
    timed = frame[frame["index"] != "popcount-floor"]
    assert (frame["ms_per_query"] > 0).all() and (frame["ms_per_query_single"] > 0).all()
    exhaustive = frame[frame["index"].isin(["numpy-scan", "faiss-flat", "exhaustive", "exhaustive-full",
                                            "hdhash-flat"])]
    assert np.allclose(exhaustive["recall"], 1.0)
    full_tree = frame[(frame["index"] == "hdhash-tree") & (frame["params"] == "keep_ratio=1.0")]
    assert np.allclose(full_tree["recall"], 1.0)
    assert ((timed["recall"] >= 0) & (timed["recall"] <= 1)).all()
    assert (frame["index_bytes"] > 0).all()
    for suffix in (".md", "-pareto.png", "-scaling.png"):
        assert (out / "efficiency" / f"synthetic{suffix}").stat().st_size > 500
    assert "Table II" in (out / "efficiency" / "synthetic.md").read_text()


def test_bad_sizes_refused(capsys):
    assert efficiency.main(["--db-sizes", "0"]) == 2
    assert "positive integers" in capsys.readouterr().err


def test_numpy_scan_takes_ties_by_index_like_the_exhaustive_ranking():
    from search.hamming import HammingIndex

    db = np.random.default_rng(0).integers(0, 4, (5000, 1), dtype=np.uint8)  # 2-bit spread: ties everywhere
    queries = db[:20]
    scanned = efficiency.chunked(efficiency.numpy_scan(db, 300))(queries)
    assert np.array_equal(scanned, HammingIndex(db).rank(queries, topk=300)[0])
