"""Metrics against hand-computed fixtures (ties included) and scikit-learn."""
import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from protocols.metrics import RankingScorer, average_precision, score_index
from search.hamming import HammingIndex, hamming_distances, rank_by_distance

# one 8-bit query 0x00; database popcounts 1, 0, 1, 2, 0 -> distances [1, 0, 1, 2, 0]
DB_CODES = np.array([[0x01], [0x00], [0x80], [0x03], [0x00]], dtype=np.uint8)
DB_LABELS = np.array([[1, 0], [0, 1], [0, 1], [1, 0], [1, 0]], dtype=bool)  # items 0, 3, 4 share class 0


def test_hamming_distances_and_stable_ranking():
    d = hamming_distances(np.array([[0x00]], np.uint8), DB_CODES)
    assert d.tolist() == [[1, 0, 1, 2, 0]]
    # ties broken by ascending database index
    assert rank_by_distance(d).tolist() == [[1, 4, 0, 2, 3]]
    assert rank_by_distance(d, topk=3).tolist() == [[1, 4, 0]]


def test_hamming_distances_multiword_and_odd_bytes():
    rng = np.random.default_rng(0)
    for nbytes in (1, 3, 8, 9, 16):
        a = rng.integers(0, 256, (7, nbytes), dtype=np.uint8)
        b = rng.integers(0, 256, (11, nbytes), dtype=np.uint8)
        expected = np.unpackbits(a[:, None, :] ^ b[None, :, :], axis=2).sum(axis=2)
        assert np.array_equal(hamming_distances(a, b), expected)


def test_map_fixture_by_hand():
    query = np.array([[0x00], [0xFF]], np.uint8)
    query_labels = np.array([[1, 0], [1, 0]], dtype=bool)
    # query 0: ranked relevance [0, 1, 1, 0, 1]; AP@all = (1/2 + 2/3 + 3/5) / 3, AP@3 = (1/2 + 2/3) / 2
    # query 1 (0xFF): distances [7, 8, 7, 6, 8] -> order [3, 0, 2, 1, 4], relevance [1, 1, 0, 0, 1]
    #   AP@all = (1 + 1 + 3/5) / 3, AP@3 = (1 + 1) / 2
    ap_all = [(1 / 2 + 2 / 3 + 3 / 5) / 3, (1 + 1 + 3 / 5) / 3]
    ap_3 = [(1 / 2 + 2 / 3) / 2, 1.0]
    result = score_index(HammingIndex(DB_CODES), query, query_labels, DB_LABELS, topk=3, nbits=8)
    assert result["map_all"] == pytest.approx(np.mean(ap_all))
    assert result["map"] == pytest.approx(np.mean(ap_3))
    # radius 2: query 0 retrieves all five (3 relevant); query 1 retrieves none -> 0 and counted
    assert result["p_r2"] == pytest.approx((3 / 5 + 0) / 2)
    assert result["p_r2_empty_frac"] == pytest.approx(0.5)
    # precision-recall at radius 0: query 0 retrieves items 1 and 4 (one relevant of three)
    pr = result["pr_curve"]
    assert pr["precision"][0] == pytest.approx((1 / 2 + 0) / 2)
    assert pr["recall"][0] == pytest.approx((1 / 3 + 0) / 2)
    assert pr["recall"][8] == pytest.approx(1.0)


def test_ap_zero_when_nothing_relevant_in_topk_and_counted():
    result = score_index(HammingIndex(DB_CODES), np.array([[0x00]], np.uint8), np.array([[1, 0]], bool),
                         DB_LABELS, topk=1, nbits=8)
    assert result["map"] == 0.0
    assert result["n_query_no_relevant_topk"] == 1


def test_average_precision_rows():
    rel = np.array([[1, 0, 1], [0, 0, 0], [0, 1, 0]], dtype=bool)
    assert average_precision(rel).tolist() == pytest.approx([(1 + 2 / 3) / 2, 0.0, 0.5])


def test_average_precision_matches_the_cumulative_definition():
    # AP = (1 / R) * sum_k P@k * rel_k written out with a cumsum over every position, against the
    # sum over relevant positions only that average_precision uses; rows with no hits, no columns
    rng = np.random.default_rng(5)
    for shape, p in [((40, 300), 0.3), ((25, 50), 0.02), ((6, 1), 0.5), ((4, 0), 0.5), ((0, 9), 0.5)]:
        rel = rng.random(shape) < p
        hits = np.cumsum(rel, axis=1)
        n_relevant = hits[:, -1] if shape[1] else np.zeros(shape[0])
        total = (hits / np.arange(1, shape[1] + 1) * rel).sum(axis=1)
        expected = np.divide(total, n_relevant, out=np.zeros(shape[0]), where=n_relevant > 0)
        assert average_precision(rel) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_sign_codes_distances_equal_the_packed_codes_distances():
    from common.hamming import sign_codes_distances

    rng = np.random.default_rng(6)
    for nbits in (8, 13, 64, 72):
        q, d = rng.standard_normal((9, nbits)), rng.standard_normal((30, nbits))
        expected = (np.sign(q)[:, None, :] != np.sign(d)[None, :, :]).sum(axis=2)
        got = sign_codes_distances(q, d)
        assert got.dtype == np.uint16 and np.array_equal(got, expected)


def test_map_all_equals_sklearn_on_tie_free_data():
    rng = np.random.default_rng(3)
    n_query, n_db = 20, 300
    scores = rng.random((n_query, n_db))
    db_labels = np.eye(4, dtype=bool)[rng.integers(0, 4, n_db)]
    query_labels = np.eye(4, dtype=bool)[rng.integers(0, 4, n_query)]
    order = np.argsort(-scores, axis=1, kind="stable")
    scorer = RankingScorer(db_labels, topk=None)
    scorer.add(order, None, query_labels)
    relevant = (query_labels.astype(int) @ db_labels.T.astype(int)) > 0
    expected = np.mean([average_precision_score(relevant[i], scores[i]) for i in range(n_query)])
    assert scorer.result()["map_all"] == pytest.approx(expected, rel=1e-12)


def test_multilabel_relevance_is_a_shared_label():
    db_labels = np.array([[1, 1, 0], [0, 0, 1], [0, 1, 1]], dtype=bool)
    scorer = RankingScorer(db_labels, topk=None)
    scorer.add(np.array([[0, 1, 2]]), None, np.array([[0, 0, 1]], dtype=bool))
    # relevance [0, 1, 1]: AP = (1/2 + 2/3) / 2
    assert scorer.result()["map_all"] == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_p_at_n_curve():
    rng = np.random.default_rng(0)
    db_codes = rng.integers(0, 256, (1500, 2), dtype=np.uint8)
    db_labels = np.eye(3, dtype=bool)[rng.integers(0, 3, 1500)]
    result = score_index(HammingIndex(db_codes), db_codes[:5], db_labels[:5], db_labels, topk=None, nbits=16)
    assert sorted(result["p_at_n"]) == list(range(100, 1001, 100))
    assert all(0 <= v <= 1 for v in result["p_at_n"].values())


# -- tie-aware MAP@K ---------------------------------------------------------------------------------
def _brute_force_tie_aware(relevant, distances, topk):
    """Mean AP@K over every order inside the tie groups of one ranking (enumerated)."""
    import itertools

    groups = [list(np.flatnonzero(distances == d)) for d in np.unique(distances)]
    values = []
    for orders in itertools.product(*[itertools.permutations(g) for g in groups]):
        ranked = np.array([relevant[i] for group in orders for i in group])[None, :topk]
        values.append(average_precision(ranked)[0])
    return float(np.mean(values))


def test_tie_aware_ap_by_hand():
    from common.ranking import tie_aware_average_precision

    # groups {rel, not} at distance 0, {rel, not, not} at distance 1; K = 3 cuts the second group.
    # Orders of the first group: [rel, not] -> AP 5/6 if the rel of group 2 comes first (1/3), else 1;
    # [not, rel] -> 7/12 or 1/2. Mean: 1/2 (1/3 * 5/6 + 2/3) + 1/2 (1/3 * 7/12 + 2/3 * 1/2) = 53/72.
    ap = tie_aware_average_precision(np.array([[2, 3]]), np.array([[1, 1]]), topk=3)
    assert ap[0] == pytest.approx(53 / 72, rel=1e-12)
    # the same through tie_groups from a ranking in id order (the group past K is completed)
    from common.ranking import tie_groups

    sizes, rel = tie_groups(np.array([[1, 0, 1, 0, 0]], bool), np.array([[0, 0, 1, 1, 1]]), 3)
    assert tie_aware_average_precision(sizes, rel, 3)[0] == pytest.approx(53 / 72, rel=1e-12)
    # the id-order AP@3 of that ranking is (1 + 2/3) / 2: the tie-break, not the distances
    assert average_precision(np.array([[1, 0, 1]], bool))[0] == pytest.approx(5 / 6)


def test_tie_aware_ap_one_group_straddling_k_is_the_expected_share():
    from common.ranking import tie_aware_average_precision

    # one group of 4 items, 2 relevant, K = 2: h = 0 (1/6) -> 0; h = 2 (1/6) -> 1; h = 1 (4/6) -> 1/2 or 1/2
    # ([rel, not]: AP 1; [not, rel]: AP 1/2, each half of the time) = 3/4. Mean: 1/6 + 4/6 * 3/4 = 2/3.
    assert tie_aware_average_precision(np.array([[4]]), np.array([[2]]), 2)[0] == pytest.approx(2 / 3, rel=1e-12)
    # nothing relevant anywhere in reach: 0, counted
    assert tie_aware_average_precision(np.array([[3, 2]]), np.array([[0, 2]]), 3)[0] == 0.0


@pytest.mark.parametrize("seed", range(8))
def test_tie_aware_ap_equals_enumeration(seed):
    from common.ranking import tie_aware_average_precision, tie_groups

    rng = np.random.default_rng(seed)
    n = 8
    distances = np.sort(rng.integers(0, 3, n))
    relevant = rng.random(n) < 0.5
    for topk in (1, 3, 5, 8, 12):
        sizes, rel = tie_groups(relevant[None], distances[None], topk)
        expected = _brute_force_tie_aware(relevant, distances, topk)
        assert tie_aware_average_precision(sizes, rel, topk)[0] == pytest.approx(expected, rel=1e-10, abs=1e-12)


def test_tie_aware_ap_without_ties_is_ap_and_boundary_from_the_index():
    from common.ranking import tie_aware_average_precision, tie_groups

    rng = np.random.default_rng(1)
    relevant = rng.random((5, 40)) < 0.4
    distances = np.tile(np.arange(40), (5, 1))
    sizes, rel = tie_groups(relevant, distances, 15)
    assert tie_aware_average_precision(sizes, rel, 15) == pytest.approx(average_precision(relevant[:, :15]))
    # a row cut at K: the boundary group comes from the caller (here: 6 items, 3 relevant, at the K-th distance)
    cut = np.array([[1, 0, 1, 0]], bool)
    sizes, rel = tie_groups(cut, np.array([[0, 1, 1, 1]]), 4, boundary_sizes=[6], boundary_relevant=[3])
    assert sizes[0, :2].tolist() == [1, 6] and rel[0, :2].tolist() == [1, 3]
    full = np.array([[1, 0, 1, 0, 1, 1, 0]], bool)  # the 6 items at distance 1 hold 3 relevant
    assert tie_aware_average_precision(sizes, rel, 4)[0] == pytest.approx(
        _brute_force_tie_aware(full[0], np.array([0, 1, 1, 1, 1, 1, 1]), 4))


def test_scorer_reports_tie_aware_map_from_the_full_ranking():
    # fixture above, K = 3. Query 0 (0x00): distances [1, 0, 1, 2, 0]; groups {1, 4} (d 0: items 1, 4;
    # relevant: 4), {0, 2} (d 1; relevant: 0), {3} (d 2). K = 3 cuts {0, 2}: brute force over the orders.
    query = np.array([[0x00]], np.uint8)
    result = score_index(HammingIndex(DB_CODES), query, np.array([[1, 0]], bool), DB_LABELS, topk=3, nbits=8)
    relevant = np.array([1, 0, 0, 1, 1], bool)[[1, 4, 0, 2, 3]]  # items 0, 3, 4 share class 0
    expected = _brute_force_tie_aware(relevant, np.array([0, 0, 1, 1, 2]), 3)
    assert result["map_tie_aware"] == pytest.approx(expected)
    assert result["map_tie_aware"] != pytest.approx(result["map"])  # id order is one tie-break of several


def test_hypergeometric_pmf_is_exact_over_its_support():
    """The tie-aware AP's straddling group draws its relevant count from this pmf (common/ranking.py):
    checked against exact rational arithmetic, degenerate supports included."""
    from fractions import Fraction
    from math import comb

    from common.ranking import hypergeometric_pmf

    rng = np.random.default_rng(0)
    cases = [(1, 1, 1), (3, 0, 2), (5, 5, 3), (10, 3, 10), (7, 4, 1)]
    cases += [(int(n), int(rng.integers(0, n + 1)), int(rng.integers(1, n + 1))) for n in rng.integers(1, 2000, 40)]
    for n, r, m in cases:
        h, p = hypergeometric_pmf(n, r, m)
        assert h[0] == max(0, m - (n - r)) and h[-1] == min(m, r) and len(h) == len(p)
        exact = np.array([float(Fraction(comb(r, int(x)) * comb(n - r, m - int(x)), comb(n, m))) for x in h])
        assert p == pytest.approx(exact, rel=1e-10, abs=1e-15), (n, r, m)
