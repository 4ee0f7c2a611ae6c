"""The split stage: fractions, stratification, groups, a given split, and order-independent determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curation.split import SplitError, _join_units, assign_splits

SEED = 20261123


def _frame(counts: dict[str, int], groups: int = 0, seed: int = 0) -> pd.DataFrame:
    """A manifest with `counts` samples per label, optionally spread over `groups` groups."""
    labels = [label for label, n in counts.items() for _ in range(n)]
    frame = pd.DataFrame({"id": [f"s{i:05d}" for i in range(len(labels))], "label": labels})
    if groups:
        frame["speaker"] = [f"g{g:03d}" for g in np.random.default_rng(seed).integers(0, groups, len(frame))]
    return frame


def test_fractions_and_stratification() -> None:
    df = _frame({"a": 500, "b": 300, "c": 120, "d": 60, "e": 20})
    out = assign_splits(df, SEED, dev_fraction=0.2, test_fraction=0.25)
    share = pd.crosstab(out["label"], out["split"], normalize="index")
    for name, fraction in (("train", 0.55), ("dev", 0.2), ("test", 0.25)):
        assert np.allclose(share[name], fraction, atol=0.03), share
    overall = out["split"].value_counts(normalize=True)
    assert abs(overall["train"] - 0.55) < 0.01 and abs(overall["test"] - 0.25) < 0.01
    assert out.index.equals(df.index) and out["id"].tolist() == df["id"].tolist()
    assert "split" not in df.columns  # the input is left alone


def test_groups_never_straddle() -> None:
    df = _frame({"a": 400, "b": 400, "c": 200}, groups=50)
    out = assign_splits(df, SEED, dev_fraction=0.2, test_fraction=0.2, group_column="speaker")
    assert (out.groupby("speaker")["split"].nunique() == 1).all()
    share = out["split"].value_counts(normalize=True)
    assert abs(share["test"] - 0.2) < 0.06 and abs(share["dev"] - 0.2) < 0.06
    by_label = pd.crosstab(out["label"], out["split"], normalize="index")
    assert (by_label["test"] - 0.2).abs().max() < 0.08


def test_fixed_column_is_honoured() -> None:
    df = _frame({"a": 60, "b": 60})
    df["official"] = np.resize(["train", "train", "dev", "test"], len(df))
    out = assign_splits(df, SEED, 0.2, 0.25, fixed_column="official")
    assert out["split"].tolist() == df["official"].tolist()


def test_dev_is_carved_out_of_a_fixed_train_part() -> None:
    df = _frame({"a": 100, "b": 100})
    df["official"] = np.resize(["train", "train", "train", "test"], len(df))
    out = assign_splits(df, SEED, 0.2, 0.25, fixed_column="official")
    assert (out.loc[df["official"] == "test", "split"] == "test").all()
    assert set(out.loc[df["official"] == "train", "split"]) == {"train", "dev"}
    dev = out[out["split"] == "dev"]
    assert dev["label"].value_counts().to_dict() == {"a": 20, "b": 20}  # 0.2 of each label, from train only


def test_bad_fixed_value_names_the_sample() -> None:
    df = _frame({"a": 4})
    df["official"] = ["train", "test", "validation", ""]
    with pytest.raises(SplitError, match=r"(?s)'s00002': 'validation'.*'s00003': ''"):
        assign_splits(df, SEED, 0.2, 0.25, fixed_column="official")


def test_fixed_split_that_straddles_a_group_is_refused() -> None:
    df = _frame({"a": 4})
    df["official"] = ["train", "test", "test", "test"]
    df["speaker"] = ["ann", "ann", "bob", "bob"]
    with pytest.raises(SplitError, match="'ann'"):
        assign_splits(df, SEED, 0.0, 0.25, fixed_column="official", group_column="speaker")


def test_bad_settings_are_refused() -> None:
    df = _frame({"a": 10})
    with pytest.raises(SplitError, match="together below 1"):
        assign_splits(df, SEED, 0.6, 0.5)
    with pytest.raises(SplitError, match="duplicate id"):
        assign_splits(pd.concat([df, df]), SEED, 0.2, 0.2)
    with pytest.raises(SplitError, match="too few"):
        assign_splits(df.head(2), SEED, 0.2, 0.25)


def test_other_seed_other_split() -> None:
    df = _frame({"a": 100, "b": 100})
    assert not assign_splits(df, 1, 0.2, 0.2)["split"].equals(assign_splits(df, 2, 0.2, 0.2)["split"])


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(min_value=12, max_value=120),
    n_labels=st.integers(min_value=1, max_value=4),
    grouped=st.booleans(),
    seed=st.integers(min_value=0, max_value=2**32),
    data=st.data(),
)
def test_same_seed_same_split_whatever_the_row_order(
    n: int, n_labels: int, grouped: bool, seed: int, data: st.DataObject
) -> None:
    df = pd.DataFrame({"id": [f"x{i}" for i in range(n)], "label": [f"l{i % n_labels}" for i in range(n)]})
    if grouped:
        df["speaker"] = [f"g{i % 7}" for i in range(n)]
    group = "speaker" if grouped else None
    shuffled = df.iloc[data.draw(st.permutations(range(n)))].reset_index(drop=True)
    first = assign_splits(df, seed, 0.2, 0.2, group_column=group).set_index("id")["split"]
    second = assign_splits(shuffled, seed, 0.2, 0.2, group_column=group).set_index("id")["split"]
    assert first.sort_index().equals(second.sort_index())


def test_duplicate_clusters_stay_on_one_side():
    df = pd.DataFrame(
        {
            "id": [f"s{i:02d}" for i in range(40)],
            "label": ["a", "b"] * 20,
            "dup_group": [f"dup-s{i // 4 * 4:02d}" if i < 16 else f"s{i:02d}" for i in range(40)],
        }
    )
    out = assign_splits(df, 1, 0.25, 0.25, dup_column="dup_group")
    for _, sides in out.groupby("dup_group")["split"]:
        assert sides.nunique() == 1
    # a chain: s00 and s01 share a cluster, s01 and s02 a group, so all three form one unit
    units = pd.Series(["s00", "g", "g", "s03"])
    clusters = pd.Series(["c1", "c1", "x", "s03"])
    assert _join_units(units, clusters).tolist() == ["g", "g", "g", "s03"]


def test_fixed_map_renames_the_datas_own_split_names():
    df = pd.DataFrame(
        {"id": [f"s{i}" for i in range(12)], "label": ["a", "b"] * 6,
         "given": ["train"] * 6 + ["val"] * 4 + ["label_book"] * 2}
    )  # fmt: skip
    out = assign_splits(df, 1, 0.0, 0.0, fixed_column="given", fixed_map={"val": "test", "label_book": "train"})
    assert out["split"].tolist() == ["train"] * 6 + ["test"] * 4 + ["train"] * 2
    with pytest.raises(SplitError, match="'val'"):
        assign_splits(df, 1, 0.0, 0.0, fixed_column="given")
