"""Atomic writes and the manifest schema."""

import json

import pandas as pd
import pytest

from curation import manifest
from curation.io import atomic_dir, atomic_path, write_json


def test_atomic_path_leaves_nothing_when_the_block_fails(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_replaces_the_old_folder_only_on_success(tmp_path):
    target = tmp_path / "stage"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("new")
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"]
    with atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stage"]


def test_write_json_turns_nan_into_null_and_sorts_keys(tmp_path):
    write_json(tmp_path / "m.json", {"b": float("nan"), "a": 1.5})
    text = (tmp_path / "m.json").read_text()
    assert json.loads(text) == {"a": 1.5, "b": None}
    assert text.index('"a"') < text.index('"b"')


def _frame(**overrides):
    base = {
        "id": ["a", "b"],
        "path": ["a.wav", "b.wav"],
        "label": ["1", "2"],
        "split": ["", ""],
        "sha256": ["x", "y"],
    }
    return pd.DataFrame(base | overrides)


def test_manifest_missing_column_is_named():
    with pytest.raises(manifest.ManifestError, match="sha256"):
        manifest.validate(_frame().drop(columns="sha256"))


def test_manifest_duplicate_id_is_named():
    with pytest.raises(manifest.ManifestError, match="id 'a': duplicated"):
        manifest.validate(_frame(id=["a", "a"]))


def test_manifest_bad_split_is_named():
    with pytest.raises(manifest.ManifestError, match="id 'b': split 'holdout'"):
        manifest.validate(_frame(split=["train", "holdout"]))


def test_manifest_round_trip_sorted_by_id(tmp_path):
    manifest.write(_frame(id=["z", "a"]), tmp_path / "m.parquet")
    assert manifest.read(tmp_path / "m.parquet")["id"].tolist() == ["a", "z"]
