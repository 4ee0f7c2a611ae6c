"""The `curate` command: bad input ends in one clear message naming the file and the reason."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from curation.cli import main
from curation.media import save_audio
from tests.corpus import write_corpus


def _project(tmp_path: Path, rows: str, on_error: str = "fail") -> Path:
    root = tmp_path / "raw"
    root.mkdir()
    for name in ("good.wav", "other.wav"):
        save_audio(root / name, 0.1 * np.sin(np.arange(800, dtype=np.float32)), 8000)
    (root / "corrupt.wav").write_bytes(b"RIFF\x00\x00not a wav at all")
    (root / "empty.wav").write_bytes(b"")
    (root / "meta.csv").write_text("path,label\n" + rows)
    params = {
        "seed": 1,
        "datasets": {
            "speech": {
                "modality": "audio",
                "source": {"kind": "csv", "root": "raw", "manifest": "raw/meta.csv"},
                "labels": ["0", "1"],
                "on_error": on_error,
                "media": {"sample_rate": 8000},
                "noise": None,
                "split": {},
                "train": {},
                "slices": [],
            }
        },
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path


ROWS = "good.wav,0\ncorrupt.wav,0\nempty.wav,1\nother.wav,7\nmissing.wav,1\n../outside.wav,0\n"


def test_validate_fails_naming_every_bad_file_and_reason(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(_project(tmp_path, ROWS))
    assert main(["ingest", "speech"]) == 0
    assert main(["validate", "speech"]) == 2
    err = capsys.readouterr().err
    assert "corrupt.wav" in err and "cannot decode audio" in err
    assert "empty.wav" in err and "empty file" in err
    assert "label '7' is not one of the labels" in err
    assert "missing.wav" in err and "file not found" in err
    assert "../outside.wav" in err and "outside the data root" in err
    assert not (tmp_path / "data/speech/manifest.parquet").exists()  # nothing half-written
    assert not (tmp_path / "data/speech/readiness").exists()


def test_quarantine_reports_and_reconciles(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(_project(tmp_path, ROWS, on_error="quarantine"))
    assert main(["ingest", "speech"]) == 0
    assert main(["validate", "speech"]) == 0
    assert "6 files seen = 1 kept + 5 quarantined" in capsys.readouterr().out
    report = yaml.safe_load((tmp_path / "metrics/speech/readiness.json").read_text())
    assert (report["seen"], report["kept"], report["quarantined"], report["reconciled"]) == (6, 1, 5, True)
    quarantine = pd.read_csv(tmp_path / "data/speech/readiness/quarantine.csv")
    assert sorted(quarantine["id"]) == ["../outside.wav", "corrupt.wav", "empty.wav", "missing.wav", "other.wav"]
    assert pd.read_parquet(tmp_path / "data/speech/manifest.parquet")["id"].tolist() == ["good.wav"]


def test_pin_profile_then_drift_is_reported(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(_project(tmp_path, ROWS, on_error="quarantine"))
    assert main(["ingest", "speech"]) == 0 and main(["validate", "speech"]) == 0
    assert main(["pin-profile", "speech"]) == 0
    assert (tmp_path / "references/speech.profile.json").read_text() == (
        tmp_path / "metrics/speech/profile.json"
    ).read_text()
    (tmp_path / "raw/meta.csv").write_text("path,label\ngood.wav,0\nother.wav,1\n")
    assert main(["ingest", "speech"]) == 0 and main(["validate", "speech"]) == 0
    report = yaml.safe_load((tmp_path / "metrics/speech/readiness.json").read_text())
    assert report["reference_pinned"] and [d["kind"] for d in report["drift"]] == ["new_class"]


def test_unknown_data_set_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(_project(tmp_path, ROWS))
    assert main(["split", "nope"]) == 2
    assert "no data set 'nope' in params.yaml; known: speech" in capsys.readouterr().err


@pytest.mark.parametrize(("command", "missing"), [("split", "manifest.parquet"), ("evaluate", "model.pt")])
def test_stage_without_its_inputs_names_the_missing_file(tmp_path, monkeypatch, capsys, command, missing):
    monkeypatch.chdir(_project(tmp_path, ROWS))
    argv = [command, "speech"] + (["v1"] if command == "evaluate" else [])
    assert main(argv) == 2
    assert missing in capsys.readouterr().err


def test_review_init_adds_queued_samples_once_and_keeps_decisions(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(_project(tmp_path, ROWS))
    queue = tmp_path / "data/speech/checklist/review_queue.csv"
    queue.parent.mkdir(parents=True)
    queue.write_text(
        "id,path,label,kind,target_slice,suggested\naug/a/00000,x.wav,1,candidate,condition=car,\n"
        "aug/a/00001,y.wav,0,candidate,condition=car,\nraw/7.wav,raw/7.wav,1,label_issue,,7\n"
    )
    decisions = tmp_path / "data/reviews/speech.csv"
    decisions.parent.mkdir()
    decisions.write_text("id,decision,label,labeler,note\naug/a/00000,reject,1,ann,not a digit\n")
    assert main(["review", "init", "speech"]) == 0
    assert main(["review", "init", "speech"]) == 0
    lines = decisions.read_text().splitlines()
    assert lines == [
        "id,decision,label,labeler,note,path",
        "aug/a/00000,reject,1,ann,not a digit,",  # written before paths were recorded: none
        "aug/a/00001,,0,,,y.wav",
        "raw/7.wav,,7,,,raw/7.wav",  # a label issue starts at the model's suggestion
    ]
    assert "2 samples added for review" in capsys.readouterr().out


@pytest.mark.parametrize("modality", ["audio", "image"])
def test_the_whole_bad_input_corpus_runs_through_the_stages(tmp_path, monkeypatch, capsys, modality):
    """ingest + validate on every corpus file in a folder per class, with a non-UTF-8 name: nothing crashes,
    every error is in quarantine.csv, and the counts reconcile."""
    monkeypatch.chdir(_project(tmp_path, ROWS, on_error="quarantine"))
    expected = write_corpus(tmp_path / "folder" / "0", modality)
    (tmp_path / "folder" / "1").mkdir()
    ext = ".wav" if modality == "audio" else ".png"
    clean = next(name for name, check in expected.items() if not check and name.endswith(ext))
    (tmp_path / "folder" / "1" / os.fsdecode(b"\xff" + ext.encode())).write_bytes(
        (tmp_path / "folder" / "0" / clean).read_bytes()
    )
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["datasets"]["speech"] |= {"modality": modality, "source": {"kind": "folder", "root": "folder"}}
    params["datasets"]["speech"]["media"] = {"sample_rate": 8000} if modality == "audio" else {"channels": 1}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert main(["ingest", "speech"]) == 0 and main(["validate", "speech"]) == 0
    report = yaml.safe_load((tmp_path / "metrics/speech/readiness.json").read_text())
    quarantine = pd.read_csv(tmp_path / "data/speech/readiness/quarantine.csv", dtype=str)
    kept = pd.read_parquet(tmp_path / "data/speech/manifest.parquet")
    assert report["seen"] == len(expected) + 1 == len(kept) + quarantine["id"].nunique()
    assert report["quarantined"] == quarantine["id"].nunique() and report["reconciled"]
    assert f"1/\\xff{ext}" in set(quarantine["id"])
    assert {f"0/{n}" for n, c in expected.items() if c == "decode"} <= set(quarantine["id"])


def test_leakage_is_checked_across_the_fixed_split_when_split_column_is_null(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(_project(tmp_path, ROWS, on_error="quarantine"))
    (tmp_path / "raw/copy.wav").write_bytes((tmp_path / "raw/good.wav").read_bytes())
    (tmp_path / "raw/meta.csv").write_text("path,label,part\ngood.wav,0,train\ncopy.wav,0,test\nother.wav,1,train\n")
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["datasets"]["speech"] |= {"validate": {"split_column": None}, "split": {"fixed_column": "part"}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert main(["ingest", "speech"]) == 0 and main(["validate", "speech"]) == 0
    quarantine = pd.read_csv(tmp_path / "data/speech/readiness/quarantine.csv")
    assert quarantine[["id", "check"]].values.tolist() == [["copy.wav", "leakage"]]


def test_duplicate_ids_are_quarantined_not_a_crash(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(_project(tmp_path, ROWS, on_error="quarantine"))
    save_audio(tmp_path / "raw/third.wav", 0.2 * np.cos(np.arange(900, dtype=np.float32) / 3), 8000)
    (tmp_path / "raw/meta.csv").write_text("path,label,key\ngood.wav,0,k1\nother.wav,1,k1\nthird.wav,1,k2\n")
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["datasets"]["speech"]["source"]["id_column"] = "key"
    params["datasets"]["speech"]["on_error"] = "quarantine"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert main(["ingest", "speech"]) == 0 and main(["validate", "speech"]) == 0
    quarantine = pd.read_csv(tmp_path / "data/speech/readiness/quarantine.csv")
    assert quarantine[["id", "check"]].values.tolist() == [["k1", "duplicate_id"], ["k1", "duplicate_id"]]
    assert pd.read_parquet(tmp_path / "data/speech/manifest.parquet")["id"].tolist() == ["k2"]


def test_compare_fails_when_the_audit_gate_does(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(_project(tmp_path, ROWS))
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["datasets"]["speech"] |= {"slices": ["condition"], "audit": {"protected": ["condition=clean"],
                                                                        "tolerance": 0.05}}  # fmt: skip
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    ids, n = [f"s{i}" for i in range(60)], 60
    for version, correct in (("v1", [True] * n), ("v2", [i >= 12 for i in range(n)])):
        path = tmp_path / f"data/speech/{version}/predictions_test.parquet"
        path.parent.mkdir(parents=True)
        pred = ["0" if c else "1" for c in correct]
        pd.DataFrame({"id": ids, "label": "0", "pred": pred, "correct": correct, "condition": "clean"}).to_parquet(path)
    (tmp_path / "data/speech/targets.json").write_text("[]")
    assert main(["compare-versions", "speech", "v1", "v2"]) == 2
    err = capsys.readouterr().err
    assert "audit gate failed" in err and "protected slice 'condition=clean' regressed in v2" in err


def test_validate_holds_out_the_asked_share_of_augment_noise_for_dev(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(_project(tmp_path, "good.wav,0\nother.wav,1\n"))
    noise_dir = tmp_path / "raw" / "noise"
    noise_dir.mkdir()
    rows = ["path,group,pool"]
    for k, pool in enumerate(["augment"] * 4 + ["test"]):
        save_audio(noise_dir / f"n{k}.wav", 0.1 * np.sin(np.arange(8000, dtype=np.float32) * (k + 1)), 8000)
        rows.append(f"n{k}.wav,hum,{pool}")
    (noise_dir / "metadata.csv").write_text("\n".join(rows) + "\n")
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["datasets"]["speech"]["noise"] = {"manifest": "raw/noise/metadata.csv", "dev_share": 0.5}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert main(["ingest", "speech"]) == 0 and main(["validate", "speech"]) == 0
    pools = pd.read_parquet(tmp_path / "data/speech/noise.parquet")["pool"].value_counts().to_dict()
    assert pools == {"augment": 2, "dev": 2, "test": 1}
    report = yaml.safe_load((tmp_path / "metrics/speech/readiness.json").read_text())
    assert report["noise"]["pools"] == {"augment": 2, "dev": 2, "test": 1}
