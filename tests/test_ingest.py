"""The ingest stage: one test per rule, each on small files made here, asserted by its reason."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from curation import manifest
from curation.ingest import IngestError, ingest, ingest_noise, report_markdown
from curation.media import save_audio, save_image

AUDIO = {"sample_rate": 8000}
LABELS = ["yes", "no"]


def _tone(path: Path) -> None:
    """A valid 0.1 s audio file."""
    save_audio(path, 0.5 * np.sin(np.linspace(0, 200, 800)), 8000)


def _csv_source(root: Path, rows: list[dict[str, str]], **extra: str) -> dict[str, str]:
    """A CSV source for `rows` (path, label, ...) under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(root / "metadata.csv", index=False)
    return {"kind": "csv", "root": str(root), "manifest": str(root / "metadata.csv"),
            "path_column": "path", "label_column": "label", **extra}  # fmt: skip


def _only_finding(tmp_path: Path, bad_path: str, bad_label: str = "no") -> tuple[pd.DataFrame, dict]:
    """Ingest one good sample and one bad one in quarantine mode; check the bad one alone is dropped."""
    root = tmp_path / "data"
    _tone(root / "good.wav")
    source = _csv_source(root, [{"path": "good.wav", "label": "yes"}, {"path": bad_path, "label": bad_label}])
    df, report = ingest(source, "audio", LABELS, "quarantine", AUDIO)
    assert df["id"].tolist() == ["good.wav"]
    assert (report["seen"], report["kept"], report["quarantined"]) == (2, 1, 1)
    assert len(report["findings"]) == 1 and report["findings"][0]["path"] == bad_path
    return df, report


def _reason(report: dict) -> str:
    return report["findings"][0]["reason"]


def test_corrupt_wav(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "bad.wav").write_bytes(np.random.default_rng(0).bytes(4000))
    assert "cannot decode audio" in _reason(_only_finding(tmp_path, "bad.wav")[1])


def test_zero_byte_png(tmp_path: Path) -> None:
    root = tmp_path / "data"
    save_image(root / "yes" / "good.png", np.full((8, 8), 200, dtype=np.uint8))
    (root / "no").mkdir()
    (root / "no" / "empty.png").write_bytes(b"")
    df, report = ingest({"kind": "folder", "root": str(root)}, "image", LABELS, "quarantine", {"channels": 1})
    assert df["id"].tolist() == ["yes/good.png"]
    assert report["findings"] == [{"id": "no/empty.png", "path": "no/empty.png", "reason": "empty file"}]


def test_text_file_named_wav(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.wav").write_text("this is not audio\n")
    assert "cannot decode audio" in _reason(_only_finding(tmp_path, "notes.wav")[1])


def test_nan_float_wav(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    x = np.zeros(800, dtype=np.float32)
    x[100] = np.nan
    sf.write(tmp_path / "data" / "nan.wav", x, 8000, subtype="FLOAT")
    assert "NaN" in _reason(_only_finding(tmp_path, "nan.wav")[1])


def test_missing_file(tmp_path: Path) -> None:
    assert _reason(_only_finding(tmp_path, "gone.wav")[1]) == "file not found"


def test_dotdot_escape(tmp_path: Path) -> None:
    _tone(tmp_path / "outside.wav")
    assert "outside the data root" in _reason(_only_finding(tmp_path, "../outside.wav")[1])


def test_absolute_path(tmp_path: Path) -> None:
    _tone(tmp_path / "outside.wav")
    assert "absolute path" in _reason(_only_finding(tmp_path, str(tmp_path / "outside.wav"))[1])


def test_symlink_escaping_root(tmp_path: Path) -> None:
    _tone(tmp_path / "outside.wav")
    (tmp_path / "data").mkdir()
    os.symlink(tmp_path / "outside.wav", tmp_path / "data" / "link.wav")
    assert "outside the data root" in _reason(_only_finding(tmp_path, "link.wav")[1])


def test_label_outside_the_set(tmp_path: Path) -> None:
    _tone(tmp_path / "data" / "maybe.wav")
    assert "label 'maybe' is not one of" in _reason(_only_finding(tmp_path, "maybe.wav", "maybe")[1])


def test_label_missing(tmp_path: Path) -> None:
    _tone(tmp_path / "data" / "unlabelled.wav")
    assert _reason(_only_finding(tmp_path, "unlabelled.wav", "")[1]) == "label is missing"


def test_duplicate_id(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for name in ("a.wav", "b.wav", "c.wav"):
        _tone(root / name)
    rows = [{"path": "a.wav", "label": "yes", "key": "k1"}, {"path": "b.wav", "label": "no", "key": "k1"},
            {"path": "c.wav", "label": "no", "key": "k2"}]  # fmt: skip
    df, report = ingest(_csv_source(root, rows, id_column="key"), "audio", LABELS, "quarantine", AUDIO)
    assert df["id"].tolist() == ["k2"]
    assert [(f["id"], f["path"]) for f in report["findings"]] == [("k1", "a.wav"), ("k1", "b.wav")]
    assert all(f["reason"].startswith("duplicate id") for f in report["findings"])


def _many_problems(tmp_path: Path) -> dict[str, str]:
    """A source with two good samples and five bad ones, each bad for a different reason."""
    root = tmp_path / "data"
    for name in ("a.wav", "b.wav", "dup.wav"):
        _tone(root / name)
    (root / "broken.wav").write_bytes(b"RIFF not really")
    rows = [
        {"path": "a.wav", "label": "yes"},
        {"path": "b.wav", "label": "no"},
        {"path": "broken.wav", "label": "yes"},
        {"path": "gone.wav", "label": "no"},
        {"path": "../escape.wav", "label": "yes"},
        {"path": "dup.wav", "label": "perhaps"},
        {"path": "dup.wav", "label": "yes"},
    ]
    return _csv_source(root, rows)


def test_fail_mode_lists_every_finding_at_once(tmp_path: Path) -> None:
    with pytest.raises(IngestError) as caught:
        ingest(_many_problems(tmp_path), "audio", LABELS, "fail", AUDIO)
    message = str(caught.value)
    for expected in ("'broken.wav'", "cannot decode audio", "'gone.wav'", "file not found", "'../escape.wav'",
                     "outside the data root", "label 'perhaps'", "duplicate id"):  # fmt: skip
        assert expected in message
    assert "5 of 7 samples" in message


def test_quarantine_reconciles_and_reports(tmp_path: Path) -> None:
    df, report = ingest(_many_problems(tmp_path), "audio", LABELS, "quarantine", AUDIO)
    assert report["seen"] == report["kept"] + report["quarantined"]
    assert (report["seen"], report["kept"], report["quarantined"]) == (7, 2, 5)
    assert len(report["findings"]) == 6  # the row labelled 'perhaps' is also a duplicate
    assert report["labels"] == {"yes": 1, "no": 1}
    assert len(df) == report["kept"]
    text = report_markdown(report)
    assert "| 7 | 2 | 5 |" in text and "../escape.wav" in text and "| yes | 1 |" in text


def test_manifest_paths_hashes_and_metadata(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _tone(tmp_path / "data" / "clips" / "a.wav")
    rows = [{"path": "./clips/a.wav", "label": "yes", "speaker": "007", "note": ""}]
    source = _csv_source(Path("data"), rows)
    df, _ = ingest(source, "audio", LABELS, "fail", AUDIO)
    row = df.iloc[0]
    assert row["path"] == "data/clips/a.wav" and Path(row["path"]).is_file()
    assert row["id"] == "./clips/a.wav" and row["split"] == ""
    assert row["sha256"] == manifest.file_sha256(tmp_path / "data" / "clips" / "a.wav")
    assert row["speaker"] == "007" and row["note"] == ""  # metadata stays text, leading zeros and all
    manifest.validate(df)


def test_metadata_column_clashing_with_the_schema(tmp_path: Path) -> None:
    _tone(tmp_path / "data" / "a.wav")
    source = _csv_source(tmp_path / "data", [{"path": "a.wav", "label": "yes", "split": "test"}])
    with pytest.raises(IngestError, match="clash"):
        ingest(source, "audio", LABELS, "fail", AUDIO)


def test_csv_paths_are_relative_to_the_csv_folder(tmp_path: Path) -> None:
    root = tmp_path / "shared"
    _tone(root / "fsdd" / "clips" / "a.wav")
    _tone(root / "b.wav")
    _tone(tmp_path / "c.wav")
    rows = [
        {"path": "clips/a.wav", "label": "yes", "group": "g1"},
        {"path": "../b.wav", "label": "no", "group": "g2"},
        {"path": "../../c.wav", "label": "no", "group": "g3"},
    ]
    source = {**_csv_source(root / "fsdd", rows), "root": str(root)}
    df, report = ingest(source, "audio", LABELS, "quarantine", AUDIO)
    assert df["id"].tolist() == ["../b.wav", "clips/a.wav"]  # ids as given, rows in id order
    assert df["path"].tolist() == [(root / "b.wav").as_posix(), (root / "fsdd/clips/a.wav").as_posix()]
    assert df["group"].tolist() == ["g2", "g1"]  # a metadata column may be named like a noise column
    assert [(f["path"], "outside the data root" in f["reason"]) for f in report["findings"]] == [("../../c.wav", True)]


def test_noise_clips_are_checked_and_reported(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for name in ("car.wav", "babble.wav", "odd.wav"):
        _tone(root / "noise" / name)
    save_audio(root / "noise" / "quiet.wav", np.zeros(800), 8000)
    pd.DataFrame(
        {
            "path": ["car.wav", "babble.wav", "quiet.wav", "odd.wav", "gone.wav"],
            "kind": ["car", "babble", "car", "car", "car"],
            "pool": ["augment", "test", "test", "train", "augment"],
        }
    ).to_csv(root / "noise" / "metadata.csv", index=False)
    cfg = {"manifest": str(root / "noise" / "metadata.csv"), "group_column": "kind"}
    with pytest.raises(IngestError, match=r"(?s)silent.*'train' is not one of.*file not found"):
        ingest_noise(root, cfg, AUDIO)
    noise, report = ingest_noise(root, cfg, AUDIO, on_error="quarantine")
    assert noise.columns.tolist()[:5] == ["id", "path", "group", "pool", "sha256"]
    assert noise["path"].tolist() == [(root / "noise" / p).as_posix() for p in ("babble.wav", "car.wav")]
    assert report["clips"] == {"babble/test": 1, "car/augment": 1}
    assert (report["seen"], report["kept"], report["quarantined"]) == (5, 2, 3)
    assert "## Background noise" in report_markdown({**report, "labels": {}, "noise": report})


def test_no_noise_configured_gives_an_empty_frame(tmp_path: Path) -> None:
    noise, report = ingest_noise(tmp_path, None, AUDIO)
    assert noise.empty and noise.columns.tolist() == ["id", "path", "group", "pool", "sha256"]
    assert report["seen"] == 0


def test_folder_per_class(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for rel in ("no/b.png", "yes/a.png", "yes/sub/c.PNG"):
        save_image(root / rel, np.full((8, 8), 90, dtype=np.uint8))
    (root / "README.txt").write_text("about the data\n")
    (root / "yes" / "notes.txt").write_text("notes\n")
    df, report = ingest({"kind": "folder", "root": str(root)}, "image", None, "fail", {"channels": 1})
    assert df["id"].tolist() == ["no/b.png", "yes/a.png", "yes/sub/c.PNG"]
    assert df["label"].tolist() == ["no", "yes", "yes"]
    assert df["path"].tolist() == [(root / r).as_posix() for r in df["id"]]
    assert report["labels"] == {"no": 1, "yes": 2}
    assert [f["path"] for f in report["ignored"]] == ["README.txt", "yes/notes.txt"]
    assert "## Ignored files" in report_markdown(report)


def test_bad_settings(tmp_path: Path) -> None:
    _tone(tmp_path / "data" / "a.wav")
    source = _csv_source(tmp_path / "data", [{"path": "a.wav", "label": "yes"}])
    with pytest.raises(IngestError, match="on_error"):
        ingest(source, "audio", LABELS, "ignore", AUDIO)
    with pytest.raises(IngestError, match="sample_rate"):
        ingest(source, "audio", LABELS, "fail", {})
    with pytest.raises(IngestError, match="no column"):
        ingest({**source, "label_column": "class"}, "audio", LABELS, "fail", AUDIO)


def test_source_query_selects_a_subset_and_counts_reconcile(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    rows = []
    for i in range(4):
        save_image(root / f"{i}.png", np.full((4, 4), 10 * i, np.uint8))
        rows.append(f"{i}.png,{i % 2},{i}")
    (root / "meta.csv").write_text("path,label,index\n" + "\n".join(rows) + "\n")
    source = {"kind": "csv", "root": str(root), "manifest": str(root / "meta.csv"), "query": "index >= 2"}
    df, report = ingest(source, "image", ["0", "1"], "fail", {"channels": 1})
    assert sorted(df["index"]) == ["2", "3"]
    assert (report["listed"], report["excluded_by_query"], report["seen"]) == (4, 2, 2)


def test_source_query_that_cannot_be_evaluated_is_named(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    save_image(root / "a.png", np.zeros((4, 4), np.uint8))
    (root / "meta.csv").write_text("path,label\na.png,0\n")
    source = {"kind": "csv", "root": str(root), "manifest": str(root / "meta.csv"), "query": "speaker == 'x'"}
    with pytest.raises(IngestError, match="source query"):
        ingest(source, "image", ["0"], "fail", {"channels": 1})
