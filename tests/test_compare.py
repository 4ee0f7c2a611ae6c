"""Comparing versions on the same test samples: hand-computed deltas and McNemar p-values."""

import pandas as pd
import pytest

from curation.compare import CompareError, compare_versions, to_markdown


def _pred(correct, condition):
    return pd.DataFrame({"id": [f"s{i}" for i in range(len(correct))], "correct": correct, "condition": condition})


def test_hand_computed_comparison():
    cond = ["clean"] * 4 + ["car"] * 4
    v1 = _pred([True, True, True, True, True, True, False, False], cond)
    v2 = _pred([True, True, True, False, True, True, True, True], cond)
    table = compare_versions({"v1": v1, "v2": v2}, ["condition"], seed=0, targets=["condition=car"]).set_index("slice")
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
        compare_versions({"v1": v1, "v2": v2}, ["condition"], seed=0)
