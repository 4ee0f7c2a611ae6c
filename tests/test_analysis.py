"""Error analysis: a hand-computed table for a 10-row frame, the targets it yields, and its Markdown."""

import pandas as pd
import pytest

from curation.analysis import COLUMNS, baseline_levels, error_table, to_markdown, top_targets
from curation.metrics import evaluate_slices

BASELINE = {"default": 0.97, "condition=blur": 0.9}


def _table(pred: pd.DataFrame, specs: list[str], baseline: dict, min_size: int) -> pd.DataFrame:
    slices = evaluate_slices(pred, specs, ["x", "y"], seed=0, min_size=min_size).slices
    return error_table(slices, baseline, len(pred))


def _frame() -> pd.DataFrame:
    correct = [True] * 6 + [False] * 4
    return pd.DataFrame(
        {
            "id": [f"s{i}" for i in range(10)],
            "label": ["x"] * 10,
            "pred": ["x" if c else "y" for c in correct],
            "correct": correct,
            "condition": ["clean"] * 4 + ["dark"] * 4 + ["blur"] * 2,
            "speaker": ["a", "b"] * 5,
        }
    )


def test_hand_computed_error_table():
    table = _table(_frame(), ["condition", "speaker"], BASELINE, 3)
    assert tuple(table.columns) == COLUMNS
    # "all" first, then by priority; speaker=a and speaker=b tie and go by name
    assert table["slice"].tolist() == [
        "all",
        "condition=dark",
        "speaker=a",
        "speaker=b",
        "condition=blur",
        "condition=clean",
    ]
    t = table.set_index("slice")
    assert t["n"].tolist() == [10, 4, 5, 5, 2, 4]
    assert t["share_of_data"].tolist() == pytest.approx([1.0, 0.4, 0.5, 0.5, 0.2, 0.4])
    assert t["accuracy"].tolist() == pytest.approx([0.6, 0.5, 0.6, 0.6, 0.0, 1.0])
    assert t["error_rate"].tolist() == pytest.approx([0.4, 0.5, 0.4, 0.4, 1.0, 0.0])
    # 4 errors in all: 2 in dark, 2 in blur, 2 per speaker
    assert t["share_of_errors"].tolist() == pytest.approx([1.0, 0.5, 0.5, 0.5, 0.5, 0.0])
    assert t["baseline"].tolist() == pytest.approx([0.97, 0.97, 0.97, 0.97, 0.9, 0.97])
    assert t["gap"].tolist() == pytest.approx([0.37, 0.47, 0.37, 0.37, 0.9, 0.0])  # clean: above baseline, 0
    assert t["priority"].tolist() == pytest.approx([0.37, 0.188, 0.185, 0.185, 0.18, 0.0])
    assert t["small"].tolist() == [False, False, False, False, True, False]
    assert ((t["ci_low"] <= t["accuracy"]) & (t["accuracy"] <= t["ci_high"])).all()


def test_top_targets_skip_small_and_zero_priority_slices():
    table = _table(_frame(), ["condition", "speaker"], BASELINE, 3)
    assert top_targets(table, 2, 3) == ["condition=dark", "speaker=a"]
    assert top_targets(table, 10, 3) == ["condition=dark", "speaker=a", "speaker=b"]
    assert top_targets(table, 10, 2) == ["condition=dark", "speaker=a", "speaker=b", "condition=blur"]


def test_no_errors_means_no_targets():
    pred = _frame().assign(pred="x", correct=True)
    table = _table(pred, ["condition"], {"default": 0.97}, 1)
    assert (table["share_of_errors"] == 0).all() and (table["priority"] == 0).all()
    assert top_targets(table, 3, 1) == []


def test_baseline_problems_are_reported():
    with pytest.raises(ValueError, match=r"no entry for slice 'all' and no 'default'"):
        _table(_frame(), ["condition"], {"condition=blur": 0.9}, 1)
    with pytest.warns(UserWarning, match=r"absent from the data: \['condition=fog'\]"):
        _table(_frame(), ["condition"], {"default": 0.97, "condition=fog": 0.9}, 1)


def test_markdown_table():
    table = pd.DataFrame(
        [
            {
                "slice": "all",
                "n": 200,
                "share_of_data": 1.0,
                "accuracy": 0.8312,
                "ci_low": 0.7777,
                "ci_high": 0.8801,
                "error_rate": 0.1688,
                "share_of_errors": 1.0,
                "baseline": 0.97,
                "baseline_source": "default",
                "gap": 0.1388,
                "priority": 0.1388,
                "avoidable_errors": 27.76,
                "small": False,
            },
            {
                "slice": "note=a|b",
                "n": 12,
                "share_of_data": 0.06,
                "accuracy": 0.5,
                "ci_low": 0.25,
                "ci_high": 0.75,
                "error_rate": 0.5,
                "share_of_errors": 0.1777,
                "baseline": 0.9,
                "baseline_source": "older model",
                "gap": 0.47,
                "priority": 0.0282,
                "avoidable_errors": 5.64,
                "small": True,
            },
        ]
    )
    assert to_markdown(table) == (
        "| slice | n | share of data | accuracy [95% CI] | error rate | share of errors | baseline | gap "
        "| priority | avoidable errors | small |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|\n"
        "| all | 200 | 1.00 | 0.83 [0.78, 0.88] | 0.17 | 1.00 | 0.97 | 0.139 | 0.139 | 28 |  |\n"
        "| note=a\\|b | 12 | 0.06 | 0.50 [0.25, 0.75] | 0.50 | 0.18 | 0.90 (older model) | 0.470 | 0.028 | 6 | yes |\n"
    )


def test_baseline_levels_come_from_params_then_an_older_model_then_the_default():
    older = pd.DataFrame({"slice": ["all", "condition=dark"], "accuracy": [0.9, 0.6]})
    levels, sources = baseline_levels(
        ["all", "condition=dark", "condition=blur", "speaker=a"], {"default": 0.97, "condition=blur": 0.8}, older
    )
    assert levels == [0.9, 0.6, 0.8, 0.97]
    assert sources == ["older model", "older model", "params", "default"]


def test_stale_correct_column_is_refused():
    with pytest.raises(ValueError, match="'correct' disagrees with label == pred for 10 row"):
        _table(_frame().assign(correct=True, pred="y"), ["condition"], BASELINE, 1)
