"""Metrics: bootstrap intervals, slice tables, per-class scores and paired comparisons, checked by hand."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curation.metrics import bootstrap_ci, class_report, paired_delta, slice_table


def _pred(correct: list[bool], **slices: list[str]) -> pd.DataFrame:
    n = len(correct)
    return pd.DataFrame(
        {
            "id": [f"s{i:02d}" for i in range(n)],
            "label": ["a"] * n,
            "pred": ["a" if c else "b" for c in correct],
            "correct": correct,
            **slices,
        }
    )


def test_bootstrap_ci_degenerate_cases():
    assert bootstrap_ci(np.ones(30, dtype=bool), seed=0) == (1.0, 1.0, 1.0)
    assert bootstrap_ci(np.zeros(5, dtype=bool), seed=0) == (0.0, 0.0, 0.0)
    assert bootstrap_ci(np.array([1, 0, 1, 1]), seed=0)[0] == 0.75


def test_bootstrap_ci_width_and_seed():
    correct = np.array([True] * 80 + [False] * 20)
    acc, lo, hi = bootstrap_ci(correct, seed=3, n_boot=2000)
    assert acc == 0.8
    # normal approximation: 0.8 -+ 1.96 * sqrt(0.8 * 0.2 / 100) = [0.72, 0.88]
    assert 0.70 <= lo <= 0.74 and 0.86 <= hi <= 0.89
    assert bootstrap_ci(correct, seed=3, n_boot=2000) == (acc, lo, hi)
    narrower = bootstrap_ci(correct, seed=3, n_boot=2000, level=0.5)
    assert lo < narrower[1] <= acc <= narrower[2] < hi


def test_bootstrap_ci_refuses_bad_input():
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_ci(np.array([], dtype=bool), seed=0)
    with pytest.raises(ValueError, match="booleans"):
        bootstrap_ci(np.array([0.5, 1.0]), seed=0)
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci(np.ones(3, dtype=bool), seed=0, level=1.0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=300), st.integers(0, 2**32), st.floats(0.5, 0.99))
def test_bootstrap_ci_contains_the_estimate_and_stays_in_unit_interval(outcomes, seed, level):
    acc, lo, hi = bootstrap_ci(np.array(outcomes), seed=seed, n_boot=500, level=level)
    assert acc == pytest.approx(sum(outcomes) / len(outcomes))
    assert 0.0 <= lo <= acc <= hi <= 1.0


def test_slice_table_rows_by_hand():
    pred = _pred(
        [True] * 4 + [True, False, False] + [False, True, True],
        condition=["clean"] * 4 + ["dark"] * 3 + ["blur"] * 3,
        speaker=["ann", "bob"] * 5,
    )
    table = slice_table(pred, ["condition", "speaker"], seed=1, min_size=4)
    assert table["slice"].tolist() == [
        "all",
        "condition=blur",
        "condition=clean",
        "condition=dark",
        "speaker=ann",
        "speaker=bob",
    ]
    t = table.set_index("slice")
    assert t["n"].tolist() == [10, 3, 4, 3, 5, 5]
    assert t["accuracy"].tolist() == pytest.approx([0.7, 2 / 3, 1.0, 1 / 3, 0.8, 0.6])
    assert t["small"].tolist() == [False, True, False, True, False, False]
    assert t.loc["condition=clean", ["ci_low", "ci_high"]].tolist() == [1.0, 1.0]
    assert t.loc["speaker=bob", "column"] == "speaker" and t.loc["speaker=bob", "value"] == "bob"
    assert pd.isna(t.loc["all", "column"]) and pd.isna(t.loc["all", "value"])
    assert ((t["ci_low"] <= t["accuracy"]) & (t["accuracy"] <= t["ci_high"])).all()


def test_slice_rows_do_not_depend_on_order_or_on_other_columns():
    rng = np.random.default_rng(0)
    pred = _pred(
        list(rng.random(60) < 0.7),
        condition=list(rng.choice(["a", "b", "c"], 60)),
        speaker=list(rng.choice(["x", "y"], 60)),
    )
    one = slice_table(pred, ["condition", "speaker"], seed=9).set_index("slice")
    shuffled = pred.sample(frac=1.0, random_state=1)
    other = slice_table(shuffled, ["speaker", "condition"], seed=9).set_index("slice")
    pd.testing.assert_frame_equal(one, other.loc[one.index])
    alone = slice_table(pred, ["condition"], seed=9).set_index("slice")
    pd.testing.assert_frame_equal(alone, one.loc[alone.index])


def test_slice_table_refuses_missing_columns():
    with pytest.raises(ValueError, match=r"lack column\(s\) \['speaker'\]"):
        slice_table(_pred([True, False]), ["speaker"], seed=0)


def test_class_report_by_hand():
    pred = pd.DataFrame({"id": list("vwxyz"), "label": ["a", "a", "b", "b", "c"], "pred": ["a", "b", "b", "b", "a"]})
    pred["correct"] = pred["label"] == pred["pred"]
    report = class_report(pred, ["a", "b", "c", "d"])
    assert report["accuracy"] == pytest.approx(0.6)
    pc = report["per_class"]
    assert pc["a"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert pc["b"] == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2})
    assert pc["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert pc["d"]["support"] == 0
    assert report["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)  # d has no samples: not averaged


def test_paired_delta_by_hand():
    a = np.array([1, 1, 1, 1, 0, 0, 0, 0, 1, 0], dtype=bool)
    b = np.array([1, 1, 1, 0, 1, 1, 1, 0, 1, 1], dtype=bool)
    d = paired_delta(a, b, seed=0)
    assert d["delta"] == pytest.approx(0.3) and (d["a_only"], d["b_only"], d["n"]) == (1, 4, 10)
    # exact two-sided binomial on 5 discordant pairs, 4 one way: (1 + 5 + 5 + 1) / 32
    assert d["p_mcnemar"] == pytest.approx(12 / 32)
    assert -1.0 <= d["ci_low"] <= 0.3 <= d["ci_high"] <= 1.0
    assert paired_delta(a, b, seed=0) == d


def test_paired_delta_identical_and_clear_improvement():
    a = np.array([True, False] * 50)
    same = paired_delta(a, a.copy(), seed=1)
    assert (same["delta"], same["ci_low"], same["ci_high"], same["p_mcnemar"]) == (0.0, 0.0, 0.0, 1.0)
    better = a.copy()
    better[1:61:2] = True  # 30 errors fixed, none introduced
    d = paired_delta(a, better, seed=1)
    assert d["delta"] == pytest.approx(0.3) and d["ci_low"] > 0 and d["p_mcnemar"] < 1e-8
    with pytest.raises(ValueError, match="10 outcomes for model a but 9"):
        paired_delta(a[:10], a[:9], seed=0)
