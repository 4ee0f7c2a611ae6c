"""Comparing versions on the same test samples: hand-computed deltas and McNemar p-values."""

import pandas as pd
import pytest

from curation.compare import CompareError, audit, compare_versions, to_markdown

LABELS = ["x", "y"]


def _pred(correct, condition):
    return pd.DataFrame(
        {
            "id": [f"s{i}" for i in range(len(correct))],
            "label": "x",
            "pred": ["x" if c else "y" for c in correct],
            "correct": correct,
            "condition": condition,
        }
    )


def test_hand_computed_comparison():
    cond = ["clean"] * 4 + ["car"] * 4
    v1 = _pred([True, True, True, True, True, True, False, False], cond)
    v2 = _pred([True, True, True, False, True, True, True, True], cond)
    table = compare_versions({"v1": v1, "v2": v2}, ["condition"], 0, LABELS, targets=["condition=car"]).set_index(
        "slice"
    )
    assert table.loc["all", "acc_v1"] == pytest.approx(6 / 8) and table.loc["all", "acc_v2"] == pytest.approx(7 / 8)
    assert table.loc["condition=car", "delta_v2"] == pytest.approx(0.5)
    assert table.loc["condition=clean", "delta_v2"] == pytest.approx(-0.25)
    # discordant pairs on car: 2 improved, 0 worsened -> exact two-sided binomial p = 0.5
    assert table.loc["condition=car", "p_v2"] == pytest.approx(0.5)
    assert table.loc["all", "p_v2"] == pytest.approx(1.0)
    assert bool(table.loc["condition=car", "targeted"]) and not bool(table.loc["all", "targeted"])
    assert not table["significant_v2"].any()
    md = to_markdown(table.reset_index(), ["v1", "v2"])
    assert "| *condition=car | 4 | 0.500" in md


def test_different_test_sets_are_refused():
    v1 = _pred([True, False], ["a", "a"])
    v2 = _pred([True, False, True], ["a", "a", "a"])
    with pytest.raises(CompareError, match="not evaluated on the same test samples"):
        compare_versions({"v1": v1, "v2": v2}, ["condition"], 0, LABELS)


def _regression(n_worse: int, n: int = 60) -> pd.DataFrame:
    """A comparison where v2 gets `n_worse` of the `n` clean samples wrong that v1 got right."""
    v1 = _pred([True] * n, ["clean"] * n)
    v2 = _pred([i >= n_worse for i in range(n)], ["clean"] * n)
    return compare_versions({"v1": v1, "v2": v2}, ["condition"], 0, LABELS)


def test_audit_gate_fails_on_a_significant_regression_beyond_tolerance():
    failures = audit(_regression(12), ["v1", "v2"], ["condition=clean"], tolerance=0.05)
    assert len(failures) == 1
    assert failures[0].startswith("protected slice 'condition=clean' regressed in v2: accuracy 1.000 -> 0.800")
    assert "beyond the tolerance 0.05" in failures[0]


def test_audit_gate_passes_a_drop_within_tolerance_or_not_significant():
    assert audit(_regression(12), ["v1", "v2"], ["condition=clean"], tolerance=0.25) == []  # within tolerance
    assert audit(_regression(2), ["v1", "v2"], ["condition=clean"], tolerance=0.0) == []  # 2 of 60: p = 0.5


def test_audit_gate_refuses_an_unknown_protected_slice_and_a_negative_tolerance():
    assert audit(_regression(0), ["v1", "v2"], ["condition=clena"], 0.05) == [
        "protected slice 'condition=clena' is not in the comparison"
    ]
    with pytest.raises(CompareError, match="tolerance"):
        audit(_regression(0), ["v1", "v2"], [], -0.1)
