"""The statistics: cluster bootstrap, its coverage, paired tests, the clustered difference test, BH q-values."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse
from scipy.stats import t as t_dist

from curation.stats import (
    benjamini_hochberg,
    cluster_sums,
    difference_z,
    paired_delta,
    paired_test,
    ratio_ci,
    resample_sums,
)


def test_cluster_sums_by_hand_and_independent_of_row_order():
    values = np.array([[1, 1], [0, 1], [1, 1], [1, 1]])
    sums = cluster_sums(values, np.array(["b", "a", "b", "c"]))
    assert sums.tolist() == [[0, 1], [2, 2], [1, 1]]  # clusters a, b, c in key order
    assert cluster_sums(values[::-1], np.array(["c", "b", "a", "b"])).tolist() == sums.tolist()
    assert cluster_sums(values, None).tolist() == values.tolist()
    with pytest.raises(ValueError, match="3 cluster keys for 4 rows"):
        cluster_sums(values, np.array(["a", "b", "c"]))


def test_resample_sums_is_free_of_cluster_order_and_keeps_the_cluster_count():
    rng = np.random.default_rng(0)
    sums = rng.integers(0, 3, size=(40, 6)).astype(float)
    for form in (np.asarray, sparse.csr_matrix):
        boot = resample_sums(form(sums), seed=5, n_boot=2000)
        assert boot.shape == (2000, 6)
        np.testing.assert_array_equal(boot, resample_sums(form(sums[::-1]), seed=5, n_boot=2000))
        np.testing.assert_allclose(boot.mean(axis=0), sums.sum(axis=0), rtol=0.02)  # unbiased totals
    ones = resample_sums(np.ones((40, 1)), seed=1, n_boot=50)
    assert (ones == 40).all()  # every replicate draws exactly K clusters
    with pytest.raises(ValueError, match="K > 0"):
        resample_sums(np.zeros((0, 2)), seed=0)


def test_ratio_ci_all_or_none_gets_the_exact_interval_over_clusters():
    # Clopper-Pearson for 30 of 30: lower bound 0.025 ** (1 / 30); the bootstrap alone would give [1, 1]
    assert ratio_ci(np.ones(30), None, seed=0) == pytest.approx((1.0, 0.025 ** (1 / 30), 1.0))
    assert ratio_ci(np.zeros(5), None, seed=0) == pytest.approx((0.0, 0.0, 1 - 0.025 ** (1 / 5)))
    six_sources = np.repeat(np.arange(6), 5)
    assert ratio_ci(np.ones(30), six_sources, seed=0)[1] == pytest.approx(0.025 ** (1 / 6))  # 6 units, not 30
    with pytest.raises(ValueError, match="level"):
        ratio_ci(np.array([1.0, 0.0]), None, seed=0, level=1.0)
    acc, lo, hi = ratio_ci(np.array([1.0] * 80 + [0.0] * 20), None, seed=3, n_boot=2000)
    # normal approximation: 0.8 -+ 1.96 * sqrt(0.8 * 0.2 / 100) = [0.72, 0.88]
    assert acc == 0.8 and 0.70 <= lo <= 0.74 and 0.86 <= hi <= 0.89


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), st.integers(0, 6)), min_size=1, max_size=120),
    st.integers(0, 2**32),
    st.floats(0.5, 0.99),
)
def test_ratio_ci_contains_the_estimate_and_is_deterministic(rows, seed, level):
    values = np.array([r[0] for r in rows], dtype=float)
    clusters = np.array([f"c{r[1]}" for r in rows])
    est, lo, hi = ratio_ci(values, clusters, seed, n_boot=300, level=level)
    assert est == pytest.approx(values.mean())
    assert 0.0 <= lo <= est + 1e-12 and est - 1e-12 <= hi <= 1.0
    assert ratio_ci(values, clusters, seed, n_boot=300, level=level) == (est, lo, hi)


def _coverage(make, trials: int, rate: float, clustered: bool) -> float:
    hits = 0
    for t in range(trials):
        values, clusters = make(np.random.default_rng(1000 + t))
        _, lo, hi = ratio_ci(values, clusters if clustered else None, seed=t, n_boot=1000)
        hits += lo <= rate <= hi
    return hits / trials


def test_bootstrap_interval_covers_the_true_rate_at_about_the_nominal_level():
    def independent(rng):
        return (rng.random(150) < 0.8).astype(float), None

    coverage = _coverage(independent, trials=400, rate=0.8, clustered=False)
    # 400 trials: a binomial standard error of 0.011 around 0.95
    assert 0.92 <= coverage <= 0.975


def test_cluster_bootstrap_keeps_its_coverage_where_rows_are_copies():
    # 60 recordings, 5 stress-test copies each; a recording is hard or easy for all its copies
    def copies(rng):
        p = rng.beta(2, 0.5, size=60)  # mean 0.8
        outcome = rng.random((60, 1)) < p[:, None]
        values = np.repeat(outcome, 5, axis=1) ^ (rng.random((60, 5)) < 0.05)
        return values.reshape(-1).astype(float), np.repeat(np.arange(60), 5)

    true_rate = 0.8 * 0.95 + 0.2 * 0.05
    clustered = _coverage(copies, trials=300, rate=true_rate, clustered=True)
    naive = _coverage(copies, trials=300, rate=true_rate, clustered=False)
    assert 0.90 <= clustered <= 0.98
    assert naive < 0.75  # treating copies as independent evidence: intervals far too narrow


def test_paired_delta_by_hand():
    a = np.array([1, 1, 1, 1, 0, 0, 0, 0, 1, 0], dtype=bool)
    b = np.array([1, 1, 1, 0, 1, 1, 1, 0, 1, 1], dtype=bool)
    d = paired_delta(a, b, seed=0)
    assert d["delta"] == pytest.approx(0.3) and (d["a_only"], d["b_only"], d["n"], d["clusters"]) == (1, 4, 10, 10)
    # exact two-sided binomial on 5 discordant pairs, 4 one way: (1 + 5 + 5 + 1) / 32
    assert d["p"] == pytest.approx(12 / 32)
    assert -1.0 <= d["ci_low"] <= 0.3 <= d["ci_high"] <= 1.0
    assert paired_delta(a, b, seed=0) == d


def test_paired_delta_identical_and_clear_improvement():
    a = np.array([True, False] * 50)
    same = paired_delta(a, a.copy(), seed=1)
    assert (same["delta"], same["ci_low"], same["ci_high"], same["p"]) == (0.0, 0.0, 0.0, 1.0)
    better = a.copy()
    better[1:61:2] = True  # 30 errors fixed, none introduced
    d = paired_delta(a, better, seed=1)
    assert d["delta"] == pytest.approx(0.3) and d["ci_low"] > 0 and d["p"] < 1e-8
    with pytest.raises(ValueError, match="10 outcomes for model a but 9"):
        paired_delta(a[:10], a[:9], seed=0)
    with pytest.raises(ValueError, match="booleans"):
        paired_delta(np.array([0.5, 1.0]), np.array([1, 1]), seed=0)
    with pytest.raises(ValueError, match="non-empty"):
        paired_delta(np.array([], dtype=bool), np.array([], dtype=bool), seed=0)


def test_clustered_paired_test_by_hand_and_copies_are_not_independent_evidence():
    # Durkalski: d_c = b_only_c - a_only_c = [3, 3, -1]: (5)^2 / (9 + 9 + 1) = 25 / 19
    from scipy.stats import chi2

    assert paired_test(np.array([0, 0, 1]), np.array([3, 3, 0])) == pytest.approx(chi2.sf(25 / 19, 1))
    # 6 recordings, 5 copies each; b fixes all copies of 4 of them: as rows it looks overwhelming
    a = np.zeros(30, dtype=bool)
    b = a.copy()
    b[:20] = True
    rows = paired_delta(a, b, seed=0)
    by_source = paired_delta(a, b, seed=0, clusters=np.repeat(np.arange(6), 5))
    assert rows["p"] < 1e-5 and by_source["p"] > rows["p"] * 100
    assert by_source["ci_high"] - by_source["ci_low"] > rows["ci_high"] - rows["ci_low"]


def test_difference_z_by_hand_without_clusters():
    g = np.array([True] * 50 + [False] * 150)
    v = np.array([1.0] * 20 + [0.0] * 30 + [1.0] * 30 + [0.0] * 120)
    diff, se, p = difference_z(g, v, None)
    unpooled = np.sqrt(0.4 * 0.6 / 50 + 0.2 * 0.8 / 150) * np.sqrt(200 / 199)  # the K / (K - 1) factor
    pooled = np.sqrt(0.25 * 0.75 * (1 / 50 + 1 / 150))
    assert diff == pytest.approx(0.2)
    assert se == pytest.approx(max(unpooled, pooled))
    assert p == pytest.approx(2 * t_dist.sf(0.2 / se, df=49))  # t with (rows in the smaller side) - 1 df


def test_difference_z_counts_a_few_recordings_copied_many_times_as_few_units():
    rng = np.random.default_rng(3)
    values = np.repeat(rng.random(100) < 0.3, 6).astype(float)  # 100 recordings, 6 identical copies each
    clusters = np.repeat(np.arange(100), 6)
    group = clusters < 5
    values[group] = 1.0  # 5 recordings, all wrong
    diff, se, p = difference_z(group, values, clusters)
    assert p == pytest.approx(2 * t_dist.sf(diff / se, df=4))
    assert p > difference_z(group, values, None)[2]  # as 30 independent rows it would look stronger


def test_difference_z_does_not_call_a_small_all_wrong_group_certain():
    # 3 rows all wrong among 97 mostly right: the unpooled error of the group is 0, the pooled one is not
    g = np.array([True] * 3 + [False] * 97)
    v = np.array([1.0] * 3 + [1.0] * 10 + [0.0] * 87)
    _, se, p = difference_z(g, v, None)
    assert se == pytest.approx(np.sqrt(0.13 * 0.87 * (1 / 3 + 1 / 97)))
    assert p > 1e-7  # without the pooled error: se 0 and p 0, "certain" from 3 rows
    with pytest.raises(ValueError, match="non-empty"):
        difference_z(np.ones(3, dtype=bool), np.ones(3), None)


def test_benjamini_hochberg_by_hand():
    q = benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.5]))
    # sorted 0.01, 0.03, 0.04, 0.5 -> 0.04, 0.06, 0.0533, 0.5 -> running minimum from the top
    assert q.tolist() == pytest.approx([0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5])
    assert benjamini_hochberg(np.array([])).size == 0
