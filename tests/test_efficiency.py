"""protocols.efficiency at a tiny size: every column, sane values, seeded augmentation."""
import numpy as np
import pandas as pd
import pytest

import common.files
from protocols import efficiency, efficiency_codes, efficiency_measure, efficiency_records

COLUMNS = ["index", "params", "code_bits", "db_size", "topk", "ms_per_query", "ms_per_query_single", "recall",
           "map", "map_tie_aware", "ms_per_query_all_threads", "index_bytes", "peak_rss_mb", "build_s",
           "codes_scanned",
           # issue 30: the spread, the load, the build settings and where the codes come from
           "ms_per_query_min", "ms_per_query_max", "ms_per_query_single_min", "ms_per_query_single_max",
           "load_before", "load_after", "other_cpu_cores", "build_params", "encoded_codes", "single_queries"]


def test_augmentation_is_seeded_and_keeps_range(synthetic):
    images = synthetic.X[:50]
    a = efficiency_codes.augment(images, efficiency_codes.copy_rng(0, 1))
    b = efficiency_codes.augment(images, efficiency_codes.copy_rng(0, 1))
    c = efficiency_codes.augment(images, efficiency_codes.copy_rng(0, 2))
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
    # 16 bits, LSH as the baseline and one epoch are not Table II's defaults: the rows have their own
    # table, and the default one is not written
    name = efficiency_records.table_name("synthetic", 16, "lsh", "hdhash", {"hdhash": "epochs=1", "lsh": ""})
    assert name == "synthetic--16bits-baseline-lsh-hdhash-epochs-1"
    assert not (out / "efficiency" / "synthetic.csv").exists()
    assert efficiency_records.table_name("synthetic", variants={"hdhash": "", "hashnet": ""}) == "synthetic"
    frame = pd.read_csv(out / "efficiency" / f"{name}.csv")
    assert (frame["variant"] == str({"hdhash": "epochs=1"})).all()
    assert set(COLUMNS) <= set(frame.columns)
    assert set(frame["db_size"]) == {1000, 4000}  # 4000 > 1800 database items: transformed copies were encoded
    assert (frame["encoded_codes"] == frame["db_size"]).all() and frame["generator"].isna().all()
    assert (frame["single_queries"] == 2).all()
    timed = frame[frame["index"] != "popcount-floor"]
    assert (frame["ms_per_query"] > 0).all() and (frame["ms_per_query_single"] > 0).all()
    exhaustive = frame[frame["index"].isin(["numpy-scan", "faiss-flat", "exhaustive", "exhaustive-full",
                                            "hdhash-flat"])]
    assert np.allclose(exhaustive["recall"], 1.0) and np.allclose(exhaustive["filled"], 1.0)
    assert ((timed["filled"] > 0) & (timed["filled"] <= 1)).all()
    full_tree = frame[(frame["index"] == "hdhash-tree") & (frame["params"] == "keep_ratio=1.0")]
    assert np.allclose(full_tree["recall"], 1.0)
    # exact indexes find the same distances, so their tie-aware MAP is one number whatever their tie-break
    hashnet_exact = frame[frame["index"].isin(["numpy-scan", "faiss-flat", "exhaustive", "exhaustive-full"])]
    for _, group in hashnet_exact.groupby("db_size"):
        assert np.allclose(group["map_tie_aware"], group["map_tie_aware"].iloc[0])
    tree_exact = frame[frame["index"].isin(["hdhash-flat"]) | (frame.index.isin(full_tree.index))]
    for _, group in tree_exact.groupby("db_size"):
        assert np.allclose(group["map_tie_aware"], group["map_tie_aware"].iloc[0])
    assert ((timed["map_tie_aware"] >= 0) & (timed["map_tie_aware"] <= 1)).all()
    tree_rows = frame[frame["index"] == "hdhash-tree"]
    assert (tree_rows["codes_scanned"] <= tree_rows["candidates_visited"]).all()
    # where the tree's time goes: shares of one profiled pass, stored with every tree row and shown
    from protocols.efficiency_frame import PHASE_FIELDS

    trees = frame[frame["index"].isin(["hdhash-tree", "hdhash-tree-budget"])]
    assert len(trees) and np.allclose(trees[list(PHASE_FIELDS)].sum(axis=1), 1.0)
    assert (trees["phase_leaf_scans"] > 0).all()
    assert frame.loc[~frame.index.isin(trees.index), "phase_selection"].isna().all()
    assert "Where the tree's time goes" in (out / "efficiency" / f"{name}.md").read_text()
    assert ((timed["recall"] >= 0) & (timed["recall"] <= 1)).all()
    assert (frame["index_bytes"] > 0).all()
    for suffix in (".md", "-pareto.png", "-scaling.png"):
        assert (out / "efficiency" / f"{name}{suffix}").stat().st_size > 500
    assert "Table II" in (out / "efficiency" / f"{name}.md").read_text()
    # the headline's ratios timed again in pairs (flat at its best and each tree point in turn): stored on the
    # tree rows, the full tree (recall 1) and HDHash(0.3) at each size
    paired = frame[frame["paired_ratio"].notna()]
    assert set(paired["index"]) == {"hdhash-tree"} and set(paired["db_size"]) == {1000, 4000}
    assert "keep_ratio=0.3" in set(paired["params"]) and (paired["paired_rounds"] == 5).all()
    assert ((paired["paired_ratio"] > 0) & (paired["paired_ms"] > 0) & (paired["paired_flat_ms"] > 0)).all()
    assert paired["paired_flat"].str.startswith("use_heap=").all()
    assert "Timed in pairs after the grid (5 rounds" in (out / "efficiency" / f"{name}.md").read_text()


def test_bad_sizes_refused(capsys):
    assert efficiency.main(["--db-sizes", "0"]) == 2
    assert "positive integers" in capsys.readouterr().err


def test_numpy_scan_takes_ties_by_index_like_the_exhaustive_ranking():
    from search.hamming import HammingIndex

    db = np.random.default_rng(0).integers(0, 4, (5000, 1), dtype=np.uint8)  # 2-bit spread: ties everywhere
    queries = db[:20]
    scanned = efficiency_measure.chunked(efficiency_measure.numpy_scan(db, 300))(queries)
    assert np.array_equal(scanned, HammingIndex(db).rank(queries, topk=300)[1])


def test_accuracy_tie_aware_completes_the_boundary_group_from_the_database():
    # 6 items at distance 0 from the query (3 relevant), K = 2: every exact index scores the expected
    # AP over the draw, whichever 2 it returns. By hand: h relevant of the 2 is 0 or 2 with probability
    # 3/15 each (AP 0, 1), 1 with 9/15 (AP (1 + 1/2) / 2 = 3/4): 3/15 + 9/15 * 3/4 = 13/20
    db = np.array([[0], [0], [0], [0], [0], [0], [255]], np.uint8)
    labels = np.eye(2, dtype=bool)[[0, 0, 0, 1, 1, 1, 0]]
    query, query_labels = db[:1], labels[:1]
    shells = efficiency_measure.distance_shells(query, db, query_labels, labels, 8)
    assert shells[0][0, 0] == 6 and shells[1][0, 0] == 3 and shells[0][0, 8] == 1
    kth = np.array([0.0])
    # shells[1] counts relevance with the query's label (class 0): items 0, 1, 2 and 6 (at distance 8)
    for ids, id_order_map in (([[0, 1]], 1.0), ([[3, 4]], 0.0), ([[0, 3]], 1.0)):
        recall, map_k, tie_aware = efficiency_measure.accuracy(np.array(ids), query, db, query_labels, labels, kth, 2,
                                                               shells)
        assert recall == 1.0 and map_k == id_order_map and tie_aware == pytest.approx(13 / 20)


def test_dataset_names_as_every_command_does(capsys, tmp_path):
    from protocols import efficiency

    assert efficiency.main(["--dataset", "nosuch", "--dry-run", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown dataset 'nosuch'" in err[0] and "listfile:NAME" in err[0]
    # your own dataset by name is one (stored as listfile-NAME): without its folder, one line saying so
    assert efficiency.main(["--dataset", "listfile:mine", "--dry-run", "--out", str(tmp_path)]) == 1  # data, not usage
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "listfile-mine not found" in err[0]


def test_every_query_is_scored_on_every_core_and_timed_on_one(monkeypatch):
    """The accuracy pass (all queries, not timed) runs at ``all_threads``; the batched and one-at-a-time
    timings at one thread; the process is left at one thread."""
    import faiss

    from protocols import efficiency_run

    monkeypatch.setattr(efficiency_run, "accuracy", lambda *args: (1.0, 1.0, 1.0))
    seen = []

    def search(queries):
        seen.append((len(queries), faiss.omp_get_max_threads()))
        return np.zeros((len(queries), 5), np.int64)

    queries = np.zeros((40, 8), np.uint8)
    side = efficiency_codes.Side("m", "64", np.zeros((100, 8), np.uint8), np.zeros((100, 1), bool), queries, {}, 100)
    m = efficiency_run.Measure(topk=5, repeats=2, timing_queries=20, single_queries=3, all_threads=2,
                               max_row_minutes=45.0)
    fields = efficiency_run.measure_setting(search, side, 100, None, None, np.zeros((40, 1), bool), m)
    assert fields["recall"] == 1.0
    assert [threads for n, threads in seen if n == 40] == [2]  # the one search of every query
    assert {threads for n, threads in seen if n == 1} == {1}  # one query at a time
    assert faiss.omp_get_max_threads() == 1
