"""Atomic writes and the manifest schema."""

import json
import os
import stat

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from curation import manifest
from curation.io import atomic_dir, atomic_path, markdown_cell, safe_cell, write_csv, write_json
from curation.media import load_image


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


def test_safe_cell_neutralises_formulas_but_not_numbers():
    assert safe_cell("=1+2") == "'=1+2" and safe_cell("@SUM(A1)") == "'@SUM(A1)" and safe_cell("-2+3") == "'-2+3"
    assert safe_cell("\tx") == "'\tx" and safe_cell("+44 20") == "'+44 20"
    assert safe_cell("-0.5") == "-0.5" and safe_cell("1e-3") == "1e-3" and safe_cell("ok") == "ok"
    assert safe_cell(None) == "" and safe_cell(float("nan")) == "" and safe_cell(16000) == "16000"


def test_markdown_cell_cannot_break_a_table():
    assert markdown_cell("+cmd|' /C calc'!A0") == "'+cmd\\|' /C calc'!A0"
    assert markdown_cell("two\nlines|x") == "two lines\\|x" and markdown_cell("a\\b") == "a\\\\b"


def test_write_csv_is_spreadsheet_safe(tmp_path):
    write_csv(pd.DataFrame({"id": ["=HYPERLINK(1)", "a"], "n": [1, -2]}), tmp_path / "x.csv")
    assert (tmp_path / "x.csv").read_text() == "id,n\n'=HYPERLINK(1),1\na,-2\n"


def test_load_image_scales_16_bit_by_its_depth(tmp_path):
    values = np.array([[0, 32768], [65535, 257]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    assert load_image(tmp_path / "g16.png", 1).tolist() == [[0, 128], [255, 1]]
    assert load_image(tmp_path / "g16.png", 3)[0, 1].tolist() == [128, 128, 128]


def test_atomic_outputs_get_the_permissions_of_a_plain_write(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "table.csv") as tmp:
            tmp.write_text("a\n")
        with atomic_dir(tmp_path / "folder") as tmp:
            (tmp / "x.txt").write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "table.csv").stat().st_mode) == 0o644  # not mkstemp's private 0600
    assert stat.S_IMODE((tmp_path / "folder").stat().st_mode) == 0o755
