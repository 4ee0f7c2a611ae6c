"""The validate stage end to end: listing -> every file read once -> findings -> kept or quarantined.

The bad-input corpus (tests/corpus.py) and the listing-level cases (labels, ids, paths, names, cells) run
through `list_source` + `validate` together; every case must get its precise finding, nothing may crash
the stage, and the counts must reconcile.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from curation.checks.drift import profile
from curation.checks.findings import ReadinessError
from curation.ingest import list_noise, list_source
from curation.validate import readiness_markdown, validate, validate_noise
from tests.corpus import wav_bytes, write_corpus

AUDIO = {"sample_rate": 8000}
IMAGE = {"channels": 1}
LABELS = ["yes", "no"]


def _clip(seed: int) -> bytes:
    """A distinct 1 s clip (noise bursts): no two seeds give exact or near duplicates."""
    rng = np.random.default_rng(seed)
    envelope = np.repeat(rng.uniform(0.05, 0.5, 20), 400)
    return wav_bytes((rng.uniform(-1, 1, 8000) * envelope).astype(np.float32))


def _csv(root: Path, rows: list[dict[str, str]]) -> dict[str, str]:
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(root / "metadata.csv", index=False)
    return {"kind": "csv", "root": str(root), "manifest": str(root / "metadata.csv")}


def _run(source: dict, modality: str, media: dict, on_error: str = "quarantine", **kw: object):
    listing, _ = list_source(source, modality)
    return validate(listing, source["root"], modality, media, labels=kw.pop("labels", LABELS), on_error=on_error, **kw)


def _by_id(findings: pd.DataFrame) -> dict[str, dict[str, str]]:
    """{id: {check: reason}} of the findings."""
    out: dict[str, dict[str, str]] = {}
    for r in findings.to_dict("records"):
        out.setdefault(r["id"], {})[r["check"]] = r["reason"]
    return out


@pytest.mark.parametrize("modality", ["audio", "image"])
def test_bad_input_corpus_each_case_gets_its_finding_and_counts_reconcile(tmp_path: Path, modality: str) -> None:
    root = tmp_path / "data"
    expected = write_corpus(root, modality)
    rows = [{"path": name, "label": "yes"} for name in expected]
    result = _run(_csv(root, rows), modality, AUDIO if modality == "audio" else IMAGE)
    found = _by_id(result.findings)
    for name, check in expected.items():
        if check:
            assert check in found.get(name, {}), f"{name}: expected a {check} finding, got {found.get(name)}"
        else:
            assert name not in found, f"{name}: clean control, got {found[name]}"
    errors = set(result.findings.loc[result.findings["severity"] == "error", "id"])
    report = result.report
    assert (report["seen"], report["kept"], report["quarantined"]) == (
        len(expected),
        len(expected) - len(errors),
        len(errors),
    )
    assert report["reconciled"] and sorted(result.kept["id"]) == sorted(set(expected) - errors)
    assert set(result.table.loc[result.table["status"] == "quarantined", "id"]) == errors


def _listing_cases(tmp_path: Path) -> tuple[dict, dict[str, tuple[str, str]]]:
    """A CSV source with one good clip and one case per listing-level rule; {id: (check, reason)}."""
    root = tmp_path / "data"
    root.mkdir(parents=True)
    for seed, name in enumerate(("good.wav", "maybe.wav", "unlabelled.wav", "a.wav", "b.wav", "formula.wav")):
        (root / name).write_bytes(_clip(seed))
    (tmp_path / "outside.wav").write_bytes(_clip(10))
    os.symlink(tmp_path / "outside.wav", root / "link.wav")
    (root / "sub").mkdir()
    rows = [
        {"path": "good.wav", "label": "yes", "key": "good", "note": ""},
        {"path": "maybe.wav", "label": "maybe", "key": "maybe", "note": ""},
        {"path": "unlabelled.wav", "label": "", "key": "unlabelled", "note": ""},
        {"path": "a.wav", "label": "yes", "key": "twin", "note": ""},
        {"path": "b.wav", "label": "no", "key": "twin", "note": ""},
        {"path": "gone.wav", "label": "no", "key": "gone", "note": ""},
        {"path": "../outside.wav", "label": "no", "key": "dotdot", "note": ""},
        {"path": str(tmp_path / "outside.wav"), "label": "no", "key": "absolute", "note": ""},
        {"path": "link.wav", "label": "no", "key": "link", "note": ""},
        {"path": "sub", "label": "no", "key": "folder", "note": ""},
        {"path": "", "label": "no", "key": "nopath", "note": ""},
        {"path": "formula.wav", "label": "no", "key": "formula", "note": '=HYPERLINK("http://x")'},
    ]
    source = _csv(root, rows) | {"id_column": "key"}
    expected = {
        "maybe": ("label", "label 'maybe' is not one of the labels ['yes', 'no']"),
        "unlabelled": ("label", "label is missing"),
        "twin": ("duplicate_id", "duplicate id: 2 rows share it"),
        "gone": ("path", "file not found"),
        "dotdot": ("path", f"path leads outside the data root {root}"),
        "absolute": ("path", "absolute path; paths must be relative to the data root"),
        "link": ("path", f"path leads outside the data root {root}"),
        "folder": ("path", "not a regular file"),
        "nopath": ("path", "path is missing"),
        "formula": ("formula_cell", "column 'note' starts with '=' ('=HYPERLINK(\"http://x\")'): a spreadsheet "
                    "would run it as a formula"),
    }  # fmt: skip
    return source, expected


def test_listing_level_cases_each_get_their_reason(tmp_path: Path) -> None:
    source, expected = _listing_cases(tmp_path)
    result = _run(source, "audio", AUDIO)
    found = _by_id(result.findings)
    for key, (check, reason) in expected.items():
        assert found[key][check] == reason, key
    assert "good" not in found
    assert sorted(result.kept["id"]) == ["formula", "good"]  # a formula cell is a warning: kept, and reported
    assert (result.report["seen"], result.report["kept"], result.report["quarantined"]) == (12, 2, 10)
    assert result.report["labels"] == {"yes": 1, "no": 1}


def test_fail_mode_lists_every_error_at_once(tmp_path: Path) -> None:
    source, expected = _listing_cases(tmp_path)
    with pytest.raises(ReadinessError) as caught:
        _run(source, "audio", AUDIO, on_error="fail")
    message = str(caught.value)
    assert "10 error(s) in 10 of 12 samples" in message
    for key, (check, reason) in expected.items():
        if check != "formula_cell":
            assert f"id {key!r}" in message and reason in message, key


def test_non_utf8_file_name_is_quarantined_with_its_reason(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "yes").mkdir(parents=True)
    (root / "yes" / "ok.wav").write_bytes(_clip(0))
    (root / "yes" / os.fsdecode(b"caf\xe9.wav")).write_bytes(_clip(1))
    result = _run({"kind": "folder", "root": str(root)}, "audio", AUDIO)
    assert _by_id(result.findings) == {
        "yes/caf\\xe9.wav": {"path": "file name is not valid UTF-8 (b'yes/caf\\xe9.wav'); rename the file"}
    }
    assert result.kept["id"].tolist() == ["yes/ok.wav"]


def test_kept_manifest_paths_hashes_metadata_and_dup_groups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    root = Path("data")
    (root / "clips").mkdir(parents=True)
    (root / "clips" / "a.wav").write_bytes(_clip(0))
    (root / "clips" / "copy.wav").write_bytes(_clip(0))
    (root / "clips" / "b.wav").write_bytes(_clip(1))
    rows = [{"path": "./clips/a.wav", "label": "yes", "speaker": "007"},
            {"path": "clips/copy.wav", "label": "yes", "speaker": "007"},
            {"path": "clips/b.wav", "label": "no", "speaker": "1"}]  # fmt: skip
    result = _run(_csv(root, rows), "audio", AUDIO)
    kept = result.kept.set_index("id")
    assert kept.loc["./clips/a.wav", "path"] == "data/clips/a.wav" and kept.loc["./clips/a.wav", "split"] == ""
    assert kept.loc["./clips/a.wav", "speaker"] == "007"  # metadata stays text, leading zeros and all
    assert kept["dup_group"].tolist() == ["dup-./clips/a.wav", "clips/b.wav", "dup-./clips/a.wav"]
    assert list(kept.reset_index().columns) == ["id", "path", "label", "split", "sha256", "speaker", "dup_group"]
    assert _by_id(result.findings)["clips/copy.wav"]["exact_duplicate"].startswith("byte-identical to")


def test_leakage_across_a_given_split_quarantines_the_evaluation_copy(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    for name, seed in (("train_a.wav", 0), ("val_a.wav", 0), ("val_b.wav", 1)):
        (root / name).write_bytes(_clip(seed))
    rows = [{"path": "train_a.wav", "label": "yes", "part": "train"},
            {"path": "val_a.wav", "label": "yes", "part": "val"},
            {"path": "val_b.wav", "label": "no", "part": "val"}]  # fmt: skip
    result = _run(_csv(root, rows), "audio", AUDIO, split_column="part")
    leaks = result.findings[result.findings["check"] == "leakage"]
    assert leaks["id"].tolist() == ["val_a.wav"] and leaks["related"].tolist() == ["train_a.wav"]
    assert sorted(result.kept["id"]) == ["train_a.wav", "val_b.wav"]


def test_noise_clips_pool_group_and_silence(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "noise").mkdir(parents=True)
    for i, name in enumerate(("car.wav", "babble.wav", "odd.wav", "nogroup.wav")):
        (root / "noise" / name).write_bytes(_clip(i))
    (root / "noise" / "quiet.wav").write_bytes(wav_bytes(np.zeros(8000, dtype=np.float32)))
    pd.DataFrame(
        {
            "path": ["car.wav", "babble.wav", "quiet.wav", "odd.wav", "gone.wav", "nogroup.wav"],
            "kind": ["car", "babble", "car", "car", "car", ""],
            "pool": ["augment", "test", "test", "train", "augment", "test"],
        }
    ).to_csv(root / "noise" / "metadata.csv", index=False)
    listing = list_noise(root, {"manifest": str(root / "noise" / "metadata.csv"), "group_column": "kind"})
    with pytest.raises(ReadinessError, match=r"(?s)'odd.wav'.*'train' is not one of"):
        validate_noise(listing, root, AUDIO)
    result = validate_noise(listing, root, AUDIO, on_error="quarantine")
    found = _by_id(result.findings)
    assert found["nogroup.wav"]["label"] == "group is missing"
    assert found["gone.wav"]["path"] == "file not found"
    assert "silence" in found["quiet.wav"]
    assert result.kept.columns.tolist()[:5] == ["id", "path", "group", "pool", "sha256"]
    assert result.kept["id"].tolist() == ["babble.wav", "car.wav"]
    assert result.report["clips"] == {"babble/test": 1, "car/augment": 1}
    assert (result.report["seen"], result.report["kept"], result.report["quarantined"]) == (6, 2, 4)


def test_no_noise_gives_an_empty_frame(tmp_path: Path) -> None:
    result = validate_noise(list_noise(tmp_path, None), tmp_path, AUDIO)
    assert result.kept.empty and result.kept.columns.tolist() == ["id", "path", "group", "pool", "sha256"]
    assert result.report["seen"] == 0


def test_bad_settings_are_named(tmp_path: Path) -> None:
    source, _ = _listing_cases(tmp_path)
    with pytest.raises(ReadinessError, match="on_error"):
        _run(source, "audio", AUDIO, on_error="ignore")
    with pytest.raises(ReadinessError, match="unknown check"):
        _run(source, "audio", AUDIO, settings={"sharpness": {}})
    with pytest.raises(ReadinessError, match="unknown setting"):
        _run(source, "audio", AUDIO, settings={"silence": {"max_silence": 0.5}})
    with pytest.raises(ReadinessError, match="split column 'fold'"):
        _run(source, "audio", AUDIO, split_column="fold")


def test_report_markdown_has_every_section(tmp_path: Path) -> None:
    source, _ = _listing_cases(tmp_path)
    result = _run(source, "audio", AUDIO)
    report = result.report | {"listed": 12, "excluded_by_query": 0, "ignored": [{"path": "x|y", "reason": "r"}],
                              "noise": {"seen": 0}, "drift": [], "balance": [], "reference_pinned": False}  # fmt: skip
    summary = profile(result.kept, "audio", [])
    text = readiness_markdown("demo", report, result.findings, result.findings.iloc[:0], summary)
    assert "| 12 | 0 | 12 | 2 | 10 | 1 |" in text
    assert "### label" in text and "label 'maybe' is not one of" in text and "x\\|y" in text
    assert "'=HYPERLINK" in text  # neutralised in the report
    assert "No reference profile pinned" in text
