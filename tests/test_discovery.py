"""Slice discovery: planted weak groups are found first, unrelated groups are not, copies of one source count
once, and the result does not depend on the row order."""

import numpy as np
import pandas as pd
import pytest

from curation.discovery import COLUMNS, discover, embedding_clusters, to_markdown
from curation.slices import AND, slice_mask, terms
from curation.stats import difference_z

N_CLASSES = 10


def _grid(reps: int = 19, genders_by_speaker: bool = False) -> pd.DataFrame:
    """Every (speaker, condition, gender) combination `reps` times: 8 x 4 x 2 x 19 = 1,216 rows. With
    `genders_by_speaker` a speaker has one gender (s0-s3 m, s4-s7 f), as in real data."""
    speaker, condition, gender = np.meshgrid(np.arange(8), np.arange(4), np.arange(2), indexing="ij")
    speaker, condition, gender = (np.repeat(a.reshape(-1), reps) for a in (speaker, condition, gender))
    if genders_by_speaker:
        gender = (speaker >= 4).astype(int)
    n = speaker.size
    return pd.DataFrame(
        {
            "id": [f"r{i:05d}" for i in range(n)],
            "speaker": [f"s{s}" for s in speaker],
            "condition": np.array(["clean", "car", "noisy", "street"])[condition],
            "gender": np.array(["m", "f"])[gender],
        }
    )


def _model(
    df: pd.DataFrame, p_error: np.ndarray, rng: np.random.Generator, label: np.ndarray | None = None
) -> pd.DataFrame:
    """Labels (random unless given) and predictions of a model that errs with probability `p_error` per row."""
    n = len(df)
    label = rng.integers(0, N_CLASSES, n) if label is None else label
    wrong = rng.random(n) < p_error
    pred = np.where(wrong, (label + rng.integers(1, N_CLASSES, n)) % N_CLASSES, label)
    return df.assign(label=label.astype(str), pred=pred.astype(str), correct=pred == label)


def _shuffled_speaker(genders_by_speaker: bool, seed: int = 11) -> pd.DataFrame:
    """A model right 90% of the time, except on speaker s3 whose labels were shuffled (right ~10%)."""
    rng = np.random.default_rng(seed)
    df = _model(_grid(genders_by_speaker=genders_by_speaker), np.full(8 * 4 * 2 * 19, 0.1), rng)
    s3 = (df["speaker"] == "s3").to_numpy()
    label = df["label"].to_numpy().copy()
    label[s3] = rng.permutation(label[s3])
    return df.assign(label=label, correct=df["pred"].to_numpy() == label)


def test_shuffled_speaker_is_first_and_nothing_unrelated_is_reported():
    df = _shuffled_speaker(genders_by_speaker=False)
    assert df.loc[df["speaker"] == "s3", "correct"].mean() < 0.15
    out = discover(df, ["speaker", "condition", "gender"], seed=0)
    assert list(out.columns) == list(COLUMNS)
    assert out.iloc[0]["slice"] == "speaker=s3"
    assert out.iloc[0]["order"] == 1 and out.iloc[0]["n"] == 152
    assert out.iloc[0]["ci_low"] < out.iloc[0]["error_rate"] < out.iloc[0]["ci_high"]
    # no false discovery: every reported row is the planted group or a conjunction containing it
    assert all(("speaker", "s3") in terms(name) for name in out["slice"])
    # 14 single terms + 8*4 + 8*2 + 4*2 pairs, all with >= 20 rows
    assert out.attrs["tested"] == 14 + 56
    assert out.attrs["skipped"] == {}
    assert ((out["q"] < 0.05) & (out["diff"] > 0)).all()


def test_a_gender_weak_only_through_the_shuffled_speaker_is_marked_as_explained():
    df = _shuffled_speaker(genders_by_speaker=True)
    out = discover(df, ["speaker", "condition", "gender"], seed=0)
    assert out.iloc[0]["slice"] == "speaker=s3"
    # s3 is a man: "speaker=s3 & gender=m" is s3 itself and adds nothing, so it is pruned
    assert "speaker=s3 & gender=m" not in set(out["slice"])
    others = out[[("speaker", "s3") not in terms(name) for name in out["slice"]]]
    assert "gender=m" in set(others["slice"])
    assert all(d.startswith("explained by speaker=s3 ") for d in others["description"])


def test_planted_conjunction_is_found_as_the_conjunction():
    rng = np.random.default_rng(5)
    df = _grid()
    planted = ((df["condition"] == "noisy") & (df["gender"] == "f")).to_numpy()
    df = _model(df, np.where(planted, 0.5, 0.1), rng)
    out = discover(df, ["speaker", "condition", "gender"], seed=0)
    first = out.iloc[0]
    assert first["slice"] == "condition=noisy & gender=f"
    assert first["order"] == 2 and first["n"] == planted.sum()
    # each term alone is only mildly weaker; what remains of them without the conjunction is not weak at all
    parents = out.set_index("slice").loc[["condition=noisy", "gender=f"]]
    assert (parents["error_rate"] < first["error_rate"]).all()
    assert all(d.startswith("explained by condition=noisy & gender=f") for d in parents["description"])


def _blob(seed: int = 2) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """1,000 rows whose embeddings form one Gaussian and, for 100 of them, a separate blob where the model errs
    60% of the time; the blob's rows are mostly label 7 and mostly recorded in a car."""
    rng = np.random.default_rng(seed)
    n, blob_n, dim = 1000, 100, 16
    blob = np.zeros(n, dtype=bool)
    blob[rng.choice(n, blob_n, replace=False)] = True
    emb = rng.normal(size=(n, dim)) + np.where(blob[:, None], 6.0, 0.0)
    condition = rng.choice(["clean", "street", "cafe", "car_0db"], n, p=[0.3, 0.3, 0.3, 0.1])
    condition[blob] = np.where(rng.random(blob_n) < 0.8, "car_0db", "clean")
    df = pd.DataFrame(
        {"id": [f"x{i:04d}" for i in range(n)], "condition": condition, "speaker": [f"p{i % 5}" for i in range(n)]}
    )
    label = rng.integers(0, N_CLASSES, n)
    label[blob] = np.where(rng.random(blob_n) < 0.8, 7, label[blob])
    return _model(df, np.where(blob, 0.6, 0.1), rng, label), emb, blob


def test_embedding_blob_is_found_as_a_cluster_with_a_description():
    df, emb, blob = _blob()
    out = discover(df, ["condition", "speaker"], seed=0, embeddings=emb, n_clusters=4)
    rows = out[out["slice"].str.startswith("embedding_cluster=")]
    assert len(rows) == 1
    row = rows.iloc[0]
    cluster = embedding_clusters(df, emb, seed=0, n_clusters=4)
    value = row["slice"].partition("=")[2]
    assert np.array_equal(cluster == value, blob)
    assert row["n"] == blob.sum() and row["error_rate"] > 0.5
    assert row["description"].startswith("label 7 (")
    assert "condition=car_0db (" in row["description"]
    # the car condition is found too, but only as what the blob explains
    car = out.set_index("slice").loc["condition=car_0db"]
    assert car["description"] == f"explained by {row['slice']}" or car["description"].startswith(
        f"explained by {row['slice']} "
    )


def _copies(seed: int = 4) -> tuple[pd.DataFrame, np.ndarray]:
    """300 sources, 5 copies each (10 for the four 'rare' device sources), copies sharing their outcome.
    Speaker sp0 (30 sources) is weak; two of the four rare-device sources are wrong, the others right."""
    rng = np.random.default_rng(seed)
    n_src = 300
    speaker = np.array([f"sp{i % 10}" for i in range(n_src)])
    device = np.array(["d0", "d1"] * (n_src // 2), dtype=object)
    rare = np.array([1, 12, 23, 34])  # four sources of four different speakers
    device[rare] = "rare"
    wrong = rng.random(n_src) < np.where(speaker == "sp0", 0.6, 0.1)
    wrong[rare] = [True, True, False, False]
    copies = np.where(device == "rare", 10, 5)
    src = np.repeat(np.arange(n_src), copies)
    k = np.concatenate([np.arange(c) for c in copies])
    df = pd.DataFrame(
        {
            "id": [f"src{s:03d}@{c}" for s, c in zip(src, k, strict=True)],
            "source_id": [f"src{s:03d}" for s in src],
            "speaker": speaker[src],
            "device": device[src],
            "label": "a",
            "pred": np.where(wrong[src], "b", "a"),
            "correct": ~wrong[src],
        }
    )
    return df, rare


def test_copies_of_one_source_count_once():
    df, _ = _copies()
    clustered = discover(df, ["speaker", "device"], seed=0).set_index("slice")
    independent = discover(df, ["speaker", "device"], seed=0, cluster_column=None).set_index("slice")
    assert clustered.attrs["cluster_column"] == "source_id" and independent.attrs["cluster_column"] is None
    weak_c, weak_i = clustered.loc["speaker=sp0"], independent.loc["speaker=sp0"]
    assert (weak_c["n"], weak_c["clusters"]) == (150, 30)
    assert (weak_i["n"], weak_i["clusters"]) == (150, 150)
    assert weak_c["error_rate"] == weak_i["error_rate"]
    assert weak_c["ci_high"] - weak_c["ci_low"] > 1.5 * (weak_i["ci_high"] - weak_i["ci_low"])
    # four sources copied ten times, two of them wrong: 40 rows with 50% errors, but only four pieces of evidence
    assert "device=rare" in independent.index
    assert not any("device=rare" in name for name in clustered.index)


def test_clustered_p_values_are_those_of_the_named_slice():
    df, _ = _copies()
    out = discover(df, ["speaker", "device"], seed=0)
    for r in out.itertuples():
        mask = slice_mask(df, r.slice).to_numpy()
        diff, _, p = difference_z(mask, ~df["correct"].to_numpy(), df["source_id"].to_numpy())
        assert (mask.sum(), diff, p) == (r.n, pytest.approx(r.diff, abs=1e-12), pytest.approx(r.p, rel=1e-9))


def test_high_cardinality_column_is_skipped_and_said_so():
    df = _shuffled_speaker(genders_by_speaker=False)
    df["file"] = [f"f{i % 300}" for i in range(len(df))]
    df["mic"] = "m1"
    out = discover(df, ["speaker", "file", "mic", "tag"], seed=0, max_values=50)
    assert out.attrs["skipped"] == {
        "file": "300 distinct values > max_values=50",
        "mic": "a single value: no row outside it",
        "tag": "no tag column is true on any row",
    }
    assert out.iloc[0]["slice"] == "speaker=s3"
    assert not any(column == "file" for name in out["slice"] for column, _ in terms(name))


def test_missing_column_is_a_key_error_naming_it():
    df = _shuffled_speaker(genders_by_speaker=False)
    with pytest.raises(KeyError, match="accent"):
        discover(df, ["speaker", "accent"], seed=0)


def test_tags_and_min_size():
    df = _shuffled_speaker(genders_by_speaker=False)
    loud = np.zeros(len(df), dtype=bool)
    loud[np.flatnonzero(df["speaker"] != "s3")[:12]] = True  # 12 rows, all wrong
    df["tag:loud"] = loud
    df.loc[loud, "pred"] = "x"
    df["correct"] = df["pred"] == df["label"]
    big = discover(df, ["speaker", "tag"], seed=0, min_size=20)
    assert (big["n"] >= 20).all()
    assert not any("tag=loud" in name for name in big["slice"])
    small = discover(df, ["speaker", "tag"], seed=0, min_size=10)
    assert "tag=loud" in set(small["slice"])
    assert small.attrs["tested"] > big.attrs["tested"]
    assert (small["n"] >= 10).all()


def test_deterministic_and_independent_of_row_order():
    df, emb, _ = _blob()
    df["source_id"] = [f"g{i // 2}" for i in range(len(df))]
    kwargs = {"seed": 3, "embeddings": emb, "n_clusters": 4, "n_boot": 300}
    first = discover(df, ["condition", "speaker"], **kwargs)
    assert len(first) > 0
    pd.testing.assert_frame_equal(first, discover(df, ["condition", "speaker"], **kwargs))
    order = np.random.default_rng(0).permutation(len(df))
    kwargs["embeddings"] = emb[order]
    shuffled = discover(df.iloc[order].reset_index(drop=True), ["condition", "speaker"], **kwargs)
    pd.testing.assert_frame_equal(first, shuffled)
    assert first.attrs == shuffled.attrs
    other_seed = discover(df, ["condition", "speaker"], **{**kwargs, "embeddings": emb, "seed": 4})
    assert not first[["ci_low", "ci_high"]].equals(other_seed[["ci_low", "ci_high"]])


def test_top_k_and_conjunction_names():
    df = _shuffled_speaker(genders_by_speaker=False)
    out = discover(df, ["speaker", "condition"], seed=0)
    assert out["slice"].tolist() == ["speaker=s3"]  # its conjunctions repeat it: no interaction, not reported
    assert discover(df, ["speaker", "condition"], seed=0, top_k=0).empty
    only_singles = discover(df, ["speaker", "condition"], seed=0, max_order=1)
    assert (only_singles["order"] == 1).all() and only_singles.attrs["tested"] == 12
    assert all(AND not in name for name in only_singles["slice"])


def test_bad_input():
    df = _shuffled_speaker(genders_by_speaker=False)
    with pytest.raises(ValueError, match="max_order"):
        discover(df, ["speaker"], seed=0, max_order=3)
    with pytest.raises(ValueError, match="duplicate ids"):
        discover(pd.concat([df, df.head(3)]), ["speaker"], seed=0)
    with pytest.raises(ValueError, match="shape"):
        discover(df, ["speaker"], seed=0, embeddings=np.zeros((5, 3)))


def test_to_markdown():
    df = _shuffled_speaker(genders_by_speaker=False)
    out = discover(df, ["speaker"], seed=0).head(1)
    out.loc[0, "description"] = "a | b"
    text = to_markdown(out)
    lines = text.splitlines()
    assert lines[0].startswith("| slice | n | clusters | error rate")
    r = out.iloc[0]
    assert f"| speaker=s3 | 152 | 152 | {r.error_rate:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}] |" in lines[2]
    assert lines[2].endswith("| a \\| b |")
    empty = discover(df.assign(correct=True), ["speaker"], seed=0)
    assert empty.empty and list(empty.columns) == list(COLUMNS)
    assert to_markdown(empty) == "No slice has significantly more errors than the rest among 8 candidates tested.\n"


def test_missing_metadata_is_its_own_nan_term_and_missing_sources_are_their_own_cluster():
    df = _shuffled_speaker(genders_by_speaker=False)
    df["speaker"] = df["speaker"].astype(object).where(df["speaker"] != "s3", None)
    df["source_id"] = [None if i % 2 else f"g{i // 4}" for i in range(len(df))]
    out = discover(df, ["speaker", "condition"], seed=0)
    first = out.iloc[0]
    assert first["slice"] == "speaker=nan" and first["n"] == 152
    # rows 4k and 4k+2 share a source, odd rows stand alone: 38 pairs + 76 singletons
    assert first["clusters"] == 38 + 76
