"""Dataset profile, drift against a reference profile, class balance, and the report's Markdown."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curation.checks.drift import balance_findings, drift, profile, to_markdown
from curation.checks.findings import ReadinessError

LABELS = ("a", "b", "c", "d")
SHARES = (0.4, 0.3, 0.2, 0.1)
SLICES = ["speaker"]


def _clips(n: int = 1000, seed: int = 1) -> pd.DataFrame:
    """A probe table of audio clips: manifest columns, string metadata, and probe measurements."""
    rng = np.random.default_rng(seed)
    seconds = np.exp(rng.normal(0.0, 0.3, n))
    return pd.DataFrame(
        {
            "id": [f"s{i:05d}" for i in range(n)],
            "path": [f"clips/s{i:05d}.wav" for i in range(n)],
            "label": rng.choice(LABELS, n, p=SHARES),
            "split": rng.choice(["train", "dev", "test"], n, p=[0.7, 0.15, 0.15]),
            "sha256": [f"{i:064x}" for i in range(n)],
            "speaker": [f"spk{k}" for k in rng.integers(0, 10, n)],
            "age": [str(a) for a in rng.integers(18, 80, n)],  # numeric metadata, stored as strings
            "seconds": seconds / np.median(seconds) * 0.42,  # median exactly 0.42
            "rms_dbfs": rng.normal(-20.0, 3.0, n),
            "offset": rng.normal(0.0, 1.0, n),  # centred on zero: its median ratio means nothing
            "sample_rate": np.full(n, 8000),
            "channels": np.full(n, 1),
            "subtype": np.full(n, "PCM_16"),
        }
    )


def _labelled(table: pd.DataFrame, counts: dict[str, int], seed: int = 0) -> pd.DataFrame:
    """`table` with exactly `counts` samples per label, in a shuffled order."""
    labels = np.repeat(list(counts), list(counts.values()))
    out = table.copy()
    out["label"] = np.random.default_rng(seed).permutation(labels)
    return out


def _kinds(findings: list[dict]) -> list[tuple[str, str]]:
    return [(f["kind"], f["column"]) for f in findings]


@pytest.fixture(scope="module")
def reference() -> dict:
    return profile(_clips(), "audio", SLICES)


def test_profile_contents() -> None:
    table = pd.DataFrame(
        {
            "id": [f"s{i}" for i in range(6)],
            "path": [f"p{i}.wav" for i in range(6)],
            "label": ["x", "x", "x", "y", "y", "z"],
            "split": ["train", "train", "test", "train", "test", "train"],
            "sha256": list("abcdef"),
            "speaker": ["s1", "s1", "s2", "s2", "s2", "s3"],
            "index": ["1", "2", "3", "4", "", "6"],
            "rms_dbfs": [-20.0, -10.0, float("-inf"), -30.0, np.nan, -40.0],
            "note": ["ok", "ok", "", "bad", "ok", None],
            "blank": ["", "", "", "", "", ""],
        }
    )
    p = profile(table, "audio", ["speaker"])
    assert p["n"] == 6 and p["schema"] == 1 and p["modality"] == "audio"
    assert p["labels"] == {"counts": {"x": 3, "y": 2, "z": 1}, "shares": {"x": 0.5, "y": 0.333333, "z": 0.166667}}
    assert p["balance"] == {
        "classes": 3,
        "imbalance_ratio": 3.0,
        "largest": "x",
        "largest_count": 3,
        "smallest": "z",
        "smallest_count": 1,
        "normalized_entropy": 0.920620,
    }
    assert p["splits"] == {"test": {"x": 1, "y": 1, "z": 0}, "train": {"x": 2, "y": 1, "z": 1}}
    assert p["slices"] == {"speaker": {"s1": 2, "s2": 3, "s3": 1}, "split": {"test": 2, "train": 4}}
    assert sorted(p["columns"]) == ["blank", "index", "note", "rms_dbfs", "speaker"]
    index = p["columns"]["index"]
    assert index["type"] == "numeric" and (index["count"], index["missing"], index["nonfinite"]) == (5, 1, 0)
    assert (index["min"], index["median"], index["max"], index["mean"]) == (1.0, 3.0, 6.0, 3.2)
    assert index["values"] == {"1": 1, "2": 1, "3": 1, "4": 1, "6": 1} and len(index["quantiles"]) == 21
    rms = p["columns"]["rms_dbfs"]
    assert (rms["count"], rms["missing"], rms["nonfinite"], rms["values"]["-inf"]) == (5, 1, 1, 1)
    assert (rms["min"], rms["median"], rms["max"]) == (-40.0, -25.0, -10.0)  # over the finite values
    note = {"type": "categorical", "count": 4, "missing": 2, "distinct": 2, "values": {"bad": 1, "ok": 3}}
    assert p["columns"]["note"] == note
    assert p["columns"]["blank"] == {"type": "empty", "count": 0, "missing": 6}


def test_profile_keeps_few_values_only() -> None:
    table = _clips(300)
    table["device"] = [f"dev{i}" for i in range(300)]
    columns = profile(table, "audio", SLICES)["columns"]
    assert columns["device"] == {"type": "categorical", "count": 300, "missing": 0, "distinct": 300}
    assert "values" not in columns["age"] and columns["age"]["distinct"] == 62  # numeric, > 20 distinct
    assert columns["sample_rate"]["values"] == {"8000": 300}


def test_profile_is_independent_of_row_order() -> None:
    table = _clips()
    shuffled = table.sample(frac=1.0, random_state=7)
    assert json.dumps(profile(shuffled, "audio", SLICES)) == json.dumps(profile(table, "audio", SLICES))


def test_profile_refuses_an_unknown_slice_column() -> None:
    with pytest.raises(ReadinessError, match="accent"):
        profile(_clips(50), "audio", ["accent"])


def test_no_reference_no_findings(reference: dict) -> None:
    assert drift(reference, None) == [] and drift(reference, {}) == []


def test_no_drift_on_the_same_profile(reference: dict) -> None:
    assert drift(reference, reference) == []
    assert drift(profile(_clips(), "audio", SLICES), reference) == []


def test_no_false_alarm_on_a_fresh_sample_of_the_same_distribution(reference: dict) -> None:
    for seed in (2, 3, 4):
        assert drift(profile(_clips(seed=seed), "audio", SLICES), reference) == []


def test_new_class() -> None:
    ref = _clips()
    cur = ref.copy()
    cur.loc[cur.index[::10], "label"] = "e"  # 100 samples
    findings = drift(profile(cur, "audio", SLICES), profile(ref, "audio", SLICES))
    assert findings == [
        {
            "kind": "new_class",
            "column": "label",
            "severity": "warning",
            "reason": "new class 'e': 100 samples (10%)",
            "value": 100,
            "reference": 0,
        }
    ]


def test_vanished_class() -> None:
    ref = _labelled(_clips(), {"a": 400, "b": 300, "c": 200, "d": 100})
    cur = ref[ref["label"] != "d"]
    findings = drift(profile(cur, "audio", SLICES), profile(ref, "audio", SLICES))
    assert _kinds(findings) == [("vanished_class", "label")]
    assert findings[0]["reason"] == "class 'd' is gone (100 samples, 10% in the reference)"


def test_label_share_shift() -> None:
    ref = _labelled(_clips(), {"a": 400, "b": 300, "c": 200, "d": 100})
    cur = _labelled(_clips(), {"a": 100, "b": 200, "c": 300, "d": 400})
    findings = drift(profile(cur, "audio", SLICES), profile(ref, "audio", SLICES))
    assert _kinds(findings) == [("label_shift", "label")]
    assert findings[0]["reason"] == (
        "label shares moved (total variation 0.4 > 0.1): 'a' 40% -> 10%, 'd' 10% -> 40%, 'b' 30% -> 20%"
    )
    assert (findings[0]["value"], findings[0]["reference"]) == (0.4, 0.1)


def test_small_label_share_shift_is_not_drift() -> None:
    ref = _labelled(_clips(), {"a": 400, "b": 300, "c": 200, "d": 100})
    cur = _labelled(_clips(), {"a": 360, "b": 320, "c": 210, "d": 110})
    assert drift(profile(cur, "audio", SLICES), profile(ref, "audio", SLICES)) == []


def test_unit_change_in_a_numeric_column() -> None:
    ref = _clips()
    cur = ref.assign(seconds=ref["seconds"] * 1000)
    findings = drift(profile(cur, "audio", SLICES), profile(ref, "audio", SLICES))
    assert findings == [
        {
            "kind": "scale",
            "column": "seconds",
            "severity": "warning",
            "reason": "seconds: median 0.42 -> 420 (x1000): did the unit change?",
            "value": 420.0,
            "reference": 0.42,
        }
    ]


def test_scale_change_with_zero_medians() -> None:
    ref = _clips()
    share = np.where(np.arange(len(ref)) % 4 == 0, np.linspace(0.01, 0.05, len(ref)), 0.0)
    ref = ref.assign(silence_share=share)
    cur = ref.assign(silence_share=share * 5)
    findings = drift(profile(cur, "audio", SLICES), profile(ref, "audio", SLICES))
    assert _kinds(findings) == [("scale", "silence_share")]
    assert findings[0]["reason"] == "silence_share: p05..p95 magnitude 0.0418799 -> 0.209399 (x5)"


def test_distribution_shift_by_psi() -> None:
    ref = _clips()
    rng = np.random.default_rng(5)
    cur = ref.assign(rms_dbfs=rng.normal(-17.0, 3.0, len(ref)))  # one standard deviation louder
    findings = drift(profile(cur, "audio", SLICES), profile(ref, "audio", SLICES))
    assert _kinds(findings) == [("psi", "rms_dbfs")]
    assert findings[0]["value"] > 0.5 and findings[0]["reference"] == 0.25
    assert findings[0]["reason"].startswith("rms_dbfs: distribution shifted (PSI ")


def test_new_sample_rate() -> None:
    ref = _clips()
    cur = ref.copy()
    cur.loc[cur.index[:300], "sample_rate"] = 16000
    findings = drift(profile(cur, "audio", SLICES), profile(ref, "audio", SLICES))
    assert findings == [
        {
            "kind": "new_value",
            "column": "sample_rate",
            "severity": "warning",
            "reason": "sample_rate: new value 16000 (30% of samples)",
            "value": {"16000": 0.3},
            "reference": ["8000"],
        }
    ]
    escalated = drift(
        profile(cur, "audio", SLICES), profile(ref, "audio", SLICES), {"severity": {"new_value": "error"}}
    )
    assert [f["severity"] for f in escalated] == ["error"]


def test_vanished_and_reshuffled_categorical_values() -> None:
    ref = _clips()
    cur = ref[ref["speaker"] != "spk3"].copy()
    findings = drift(profile(cur, "audio", SLICES), profile(ref, "audio", SLICES))
    share = (ref["speaker"] == "spk3").mean()
    assert _kinds(findings) == [("vanished_value", "speaker")]
    assert findings[0]["reason"] == f"speaker: value spk3 ({100 * share:.3g}% of the reference) vanished"
    assert findings[0]["value"] == [f"spk{k}" for k in range(10) if k != 3]
    assert findings[0]["reference"] == {"spk3": round(share, 6)}
    cur = ref.assign(subtype=np.where(np.arange(len(ref)) % 10 < 5, "PCM_16", "PCM_24"))
    ref = ref.assign(subtype=np.where(np.arange(len(ref)) % 10 < 9, "PCM_16", "PCM_24"))
    findings = drift(profile(cur, "audio", SLICES), profile(ref, "audio", SLICES))
    assert _kinds(findings) == [("value_shift", "subtype")]
    assert findings[0]["reason"] == (
        "subtype: value shares moved (total variation 0.4 > 0.1): 'PCM_16' 90% -> 50%, 'PCM_24' 10% -> 50%"
    )


def test_added_and_removed_columns() -> None:
    ref = _clips()
    cur = ref.drop(columns=["age"]).assign(mic=np.where(np.arange(len(ref)) % 2 == 0, "usb", "phone"))
    findings = drift(profile(cur, "audio", SLICES), profile(ref, "audio", SLICES))
    assert [(f["kind"], f["column"], f["reason"]) for f in findings] == [
        ("column_added", "mic", "column mic added (categorical)"),
        ("column_removed", "age", "column age removed (was numeric)"),
    ]


def test_type_change_and_missing_values() -> None:
    ref = _clips()
    cur = ref.copy()
    cur["age"] = cur["age"].where(np.arange(len(cur)) % 5 != 0, "unknown")
    cur["seconds"] = cur["seconds"].where(np.arange(len(cur)) % 10 >= 3)
    findings = drift(profile(cur, "audio", SLICES), profile(ref, "audio", SLICES))
    assert [(f["kind"], f["column"], f["reason"]) for f in findings] == [
        ("type_change", "age", "age: numeric -> categorical"),
        ("missing", "seconds", "seconds: missing values 0% -> 30%"),
    ]


def test_size_change() -> None:
    ref = _clips()
    tripled = pd.concat([ref.assign(id=ref["id"] + f"-{k}") for k in range(3)], ignore_index=True)
    findings = drift(profile(tripled, "audio", SLICES), profile(ref, "audio", SLICES))
    assert findings == [
        {
            "kind": "size",
            "column": "",
            "severity": "warning",
            "reason": "sample count 1000 -> 3000 (x3)",
            "value": 3000,
            "reference": 1000,
        }
    ]
    assert drift(profile(tripled, "audio", SLICES), profile(ref, "audio", SLICES), {"size_factor": 4}) == []


def test_bad_settings_and_mismatched_profiles(reference: dict) -> None:
    with pytest.raises(ReadinessError, match="unknown threshold"):
        drift(reference, reference, {"psi_max": 0.2})
    with pytest.raises(ReadinessError, match="bad severity"):
        drift(reference, reference, {"severity": {"psi": "fatal"}})
    with pytest.raises(ReadinessError, match="modality"):
        drift(reference | {"modality": "image"}, reference)


def test_balance_findings() -> None:
    table = _labelled(_clips(230), {"a": 200, "b": 15, "c": 15})
    table["split"] = "train"
    table.loc[table.index[table["label"] == "c"][:5], "split"] = "test"  # c: 5 in test, 10 in train
    table.loc[table.index[:4], "speaker"] = "rare"
    p = profile(table, "audio", SLICES)
    findings = balance_findings(p, max_imbalance=10.0, min_per_class=10, min_per_slice=5)
    assert [(f["kind"], f["column"], f["reason"]) for f in findings] == [
        ("imbalance", "label", "class imbalance 13.3333 > 10: largest class 'a' 200 samples, smallest 'b' 15"),
        ("small_class", "label", "class 'a' has 0 sample(s) in test (< 10)"),
        ("small_class", "label", "class 'b' has 0 sample(s) in test (< 10)"),
        ("small_class", "label", "class 'c' has 5 sample(s) in test (< 10)"),
        ("small_slice", "speaker", "slice speaker=rare has 4 sample(s) (< 5)"),
    ]
    assert all(f["severity"] == "warning" for f in findings)
    assert balance_findings(profile(_clips(), "audio", SLICES)) == []


def test_markdown_sections_and_escaping() -> None:
    table = _clips(200)
    table["label"] = np.where(np.arange(200) % 2 == 0, "=HYPERLINK(x)|y", "ok")
    table["split"] = "train"
    table.loc[table.index[:3], "speaker"] = "a\nb"
    p = profile(table, "audio", SLICES)
    text = to_markdown(p, None, balance_findings(p))
    assert "## Class balance" in text and "## Per-slice counts" in text and "## Drift against the reference" in text
    assert "No reference profile pinned" in text
    assert "| '=HYPERLINK(x)\\|y | 100 | 50% | 100 |" in text
    assert "| speaker=a b | 3 | 1.5% |" in text
    assert "No drift against the reference profile." in to_markdown(p, [], [])
    shifted = drift(profile(table.assign(seconds=table["seconds"] * 1000), "audio", SLICES), p)
    assert "| warning | scale | seconds | seconds: median 0.42 -> 420 (x1000): did the unit change? |" in to_markdown(
        p, shifted, []
    )


_rows = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from(["train", "dev", "test", ""]),
        st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)),
        st.sampled_from(["", "x", "y", "=z", "1"]),
        st.integers(0, 60).map(str),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(rows=_rows, seed=st.integers(0, 2**16))
def test_profile_order_independence_and_self_drift(rows: list[tuple], seed: int) -> None:
    table = pd.DataFrame(rows, columns=["label", "split", "score", "tag", "index"])
    table.insert(0, "id", [f"s{i}" for i in range(len(table))])
    table["path"], table["sha256"] = table["id"] + ".wav", table["id"]
    p = profile(table, "image", ["tag"])
    assert json.dumps(profile(table.sample(frac=1.0, random_state=seed), "image", ["tag"])) == json.dumps(p)
    assert drift(p, p) == []
    assert json.loads(json.dumps(p)) == p


def test_a_declared_class_with_no_samples_is_a_balance_finding() -> None:
    table = pd.DataFrame({"id": ["a", "b"], "label": ["0", "1"], "split": ["", ""]})
    summary = profile(table, "image", [], declared=["0", "1", "2"])
    assert summary["absent_labels"] == ["2"]
    found = [f for f in balance_findings(summary, min_per_class=1) if f["kind"] == "small_class"]
    assert [f["reason"] for f in found] == ["class '2' has no samples at all"]
