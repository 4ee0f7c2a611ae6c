"""Metrics: bootstrap intervals, per-slice tables, per-class scores and confusion matrices, checked by hand."""

import numpy as np
import pandas as pd
import pytest

from curation.metrics import error_rates, evaluate_slices, scores


def slice_table(pred: pd.DataFrame, specs: list[str], seed: int, min_size: int = 20) -> pd.DataFrame:
    labels = sorted(set(pred["label"].astype(str)) | set(pred["pred"].astype(str)))
    return evaluate_slices(pred, specs, labels, seed, min_size=min_size).slices


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
    # 4 of 4 right: the exact interval, 0.025 ** (1 / 4) .. 1, not the bootstrap's [1, 1]
    assert t.loc["condition=clean", ["ci_low", "ci_high"]].tolist() == pytest.approx([0.025**0.25, 1.0])
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


def test_class_scores_by_hand():
    pred = pd.DataFrame({"id": list("vwxyz"), "label": ["a", "a", "b", "b", "c"], "pred": ["a", "b", "b", "b", "a"]})
    pred["correct"] = pred["label"] == pred["pred"]
    report = evaluate_slices(pred, [], ["a", "b", "c", "d"], seed=0)
    row = report.slices.iloc[0]
    assert row["accuracy"] == pytest.approx(0.6)
    assert row["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)  # d has no samples: not averaged
    pc = report.classes.set_index("class")
    assert pc.loc["a", ["precision", "recall", "f1", "support"]].tolist() == pytest.approx([0.5, 0.5, 0.5, 2])
    assert pc.loc["b", ["precision", "recall", "f1", "support"]].tolist() == pytest.approx([2 / 3, 1.0, 0.8, 2])
    assert pc.loc["c", ["precision", "recall", "f1", "support"]].tolist() == [0.0, 0.0, 0.0, 1]
    assert pc.loc["d", "support"] == 0
    cells = {(r["actual"], r["predicted"]): r["count"] for r in report.confusion.to_dict("records")}
    assert cells == {("a", "a"): 1, ("a", "b"): 1, ("b", "b"): 2, ("c", "a"): 1}


def test_false_positive_and_negative_rates_by_hand():
    # truth rows, predictions columns: class 0 has 3 samples, 1 missed; 2 of the 5 others are called 0
    cm = np.array([[2, 1, 0], [1, 2, 0], [1, 0, 1]])
    rates = error_rates(cm, 0)
    assert rates["fnr"] == pytest.approx(1 / 3) and rates["fpr"] == pytest.approx(2 / 5)
    assert np.isnan(error_rates(np.array([[0, 0], [0, 4]]), 0)["fnr"])  # no samples of the class


def test_focus_class_rates_per_slice():
    pred = pd.DataFrame(
        {
            "id": list("abcdef"),
            "label": ["x", "x", "y", "y", "x", "y"],
            "pred": ["x", "y", "x", "y", "x", "y"],
            "condition": ["n", "n", "n", "n", "q", "q"],
        }
    )
    pred["correct"] = pred["label"] == pred["pred"]
    t = evaluate_slices(pred, ["condition"], ["x", "y"], seed=0, focus="x").slices.set_index("slice")
    assert t.loc["condition=n", ["fpr", "fnr"]].tolist() == pytest.approx([0.5, 0.5])
    assert t.loc["condition=q", ["fpr", "fnr"]].tolist() == pytest.approx([0.0, 0.0])
    with pytest.raises(ValueError, match="focus class 'z'"):
        evaluate_slices(pred, [], ["x", "y"], seed=0, focus="z")


def test_every_metric_interval_holds_its_estimate():
    rng = np.random.default_rng(4)
    labels = list("abcd")
    truth = rng.choice(labels, 200)
    pred = pd.DataFrame(
        {
            "id": [f"s{i}" for i in range(200)],
            "label": truth,
            "pred": np.where(rng.random(200) < 0.7, truth, rng.choice(labels, 200)),
            "speaker": rng.choice(["p", "q"], 200),
            "source_id": [f"r{i // 4}" for i in range(200)],
        }
    )
    pred["correct"] = pred["label"] == pred["pred"]
    report = evaluate_slices(pred, ["speaker"], labels, seed=2, focus="a")
    for metric in ("accuracy", "macro_f1", "fpr", "fnr"):
        lo, hi = ("ci_low", "ci_high") if metric == "accuracy" else (f"{metric}_low", f"{metric}_high")
        assert ((report.slices[lo] <= report.slices[metric]) & (report.slices[metric] <= report.slices[hi])).all()
    for metric in ("precision", "recall", "f1"):
        c = report.classes
        assert ((c[f"{metric}_low"] <= c[metric] + 1e-12) & (c[metric] <= c[f"{metric}_high"] + 1e-12)).all()
    assert report.slices.set_index("slice").loc["all", "clusters"] == 50


def test_conjunction_and_tag_slices():
    pred = _pred(
        [True, False, True, True, False, False],
        condition=["n", "n", "n", "q", "q", "q"],
        speaker=["a", "b", "a", "b", "a", "b"],
    )
    pred["tag:dark"] = [False, True, False, False, True, True]
    t = slice_table(pred, ["condition & speaker", "tag"], seed=0, min_size=1).set_index("slice")
    assert t.index.tolist() == [
        "all",
        "condition=n & speaker=a",
        "condition=n & speaker=b",
        "condition=q & speaker=a",
        "condition=q & speaker=b",
        "tag=dark",
    ]
    assert t["n"].tolist() == [6, 2, 1, 1, 2, 3]
    assert t.loc["tag=dark", "accuracy"] == 0.0
    assert t.loc["condition=q & speaker=b", ["column", "value"]].tolist() == ["condition & speaker", "q & b"]


def test_unknown_labels_are_refused():
    with pytest.raises(ValueError, match=r"label\(s\) \['b'\] that are not among"):
        evaluate_slices(_pred([True, False]), [], ["a"], seed=0)


def test_scores_of_a_batch_match_one_by_one():
    rng = np.random.default_rng(1)
    batch = rng.integers(0, 5, size=(7, 3, 3))
    together = scores(batch)
    for i in range(7):
        alone = scores(batch[i])
        for key in ("accuracy", "macro_f1", "f1", "precision", "recall"):
            np.testing.assert_allclose(together[key][i], alone[key])


def test_a_replicate_missing_a_class_does_not_drag_its_interval_to_zero():
    # a perfect classifier; class b has 3 samples, so many replicates hold none of it
    truth = ["a"] * 27 + ["b"] * 3
    pred = pd.DataFrame({"id": [f"s{i}" for i in range(30)], "label": truth, "pred": truth, "correct": True})
    c = evaluate_slices(pred, [], ["a", "b"], seed=0).classes.set_index("class")
    assert c.loc["b", ["recall", "recall_low", "recall_high"]].tolist() == [1.0, 1.0, 1.0]
    assert c.loc["b", ["precision_low", "f1_low"]].tolist() == [1.0, 1.0]
