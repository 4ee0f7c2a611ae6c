"""The ingest adapters: a CSV manifest or a folder per class becomes one listing, nothing read or dropped."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from curation.ingest import IngestError, list_noise, list_source
from curation.media import save_image


def _csv_source(root: Path, rows: list[dict[str, str]], **extra: object) -> dict[str, object]:
    """A CSV source for `rows` (path, label, ...) under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(root / "metadata.csv", index=False)
    return {"kind": "csv", "root": str(root), "manifest": str(root / "metadata.csv"),
            "path_column": "path", "label_column": "label", **extra}  # fmt: skip


def test_csv_rows_are_listed_as_given_with_metadata_as_text(tmp_path: Path) -> None:
    rows = [{"path": "./clips/a.wav", "label": "yes", "speaker": "007", "note": ""},
            {"path": "gone.wav", "label": "", "speaker": "1", "note": "=1+1"}]  # fmt: skip
    listing, report = list_source(_csv_source(tmp_path / "data", rows), "audio")
    assert listing["id"].tolist() == ["./clips/a.wav", "gone.wav"]  # nothing judged: a missing file is listed
    assert listing["under"].tolist() == ["clips/a.wav", "gone.wav"]
    assert listing["speaker"].tolist() == ["007", "1"] and listing["note"].tolist() == ["", "=1+1"]
    assert listing["listing_error"].tolist() == ["", ""]
    assert report == {"listed": 2, "excluded_by_query": 0, "seen": 2, "ignored": []}


def test_csv_paths_are_relative_to_the_csv_folder(tmp_path: Path) -> None:
    root = tmp_path / "shared"
    source = {**_csv_source(root / "fsdd", [{"path": "clips/a.wav", "label": "yes"}]), "root": str(root)}
    listing, _ = list_source(source, "audio")
    assert listing["under"].tolist() == ["fsdd/clips/a.wav"] and listing["path"].tolist() == ["clips/a.wav"]


def test_id_column(tmp_path: Path) -> None:
    listing, _ = list_source(_csv_source(tmp_path, [{"path": "a.wav", "label": "no", "key": "k1"}], id_column="key"),
                             "audio")  # fmt: skip
    assert listing["id"].tolist() == ["k1"]


def test_metadata_column_clashing_with_the_schema_is_refused_and_can_be_renamed(tmp_path: Path) -> None:
    rows = [{"path": "a.wav", "label": "yes", "split": "val"}]
    with pytest.raises(IngestError, match=r"clash.*source.rename"):
        list_source(_csv_source(tmp_path, rows), "audio")
    listing, _ = list_source(_csv_source(tmp_path, rows, rename={"split": "given_split"}), "audio")
    assert listing["given_split"].tolist() == ["val"] and "split" not in listing.columns
    with pytest.raises(IngestError, match="rename names column"):
        list_source(_csv_source(tmp_path, rows, rename={"fold": "x"}), "audio")


def test_folder_per_class(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for rel in ("no/b.png", "yes/a.png", "yes/sub/c.PNG"):
        save_image(root / rel, np.full((8, 8), 90, dtype=np.uint8))
    (root / "README.txt").write_text("about the data\n")
    (root / "yes" / "notes.txt").write_text("notes\n")
    os.symlink(root / "yes", root / "linked")
    listing, report = list_source({"kind": "folder", "root": str(root)}, "image")
    assert listing["id"].tolist() == ["no/b.png", "yes/a.png", "yes/sub/c.PNG"]
    assert listing["label"].tolist() == ["no", "yes", "yes"]
    assert report["ignored"] == [
        {"path": "linked", "reason": "symbolic link to a folder, not followed"},
        {"path": "README.txt", "reason": "not inside a class folder"},
        {"path": "yes/notes.txt", "reason": "not a .png/.jpg/.jpeg/.bmp/.gif/.tif/.tiff/.webp file"},
    ]


def test_non_utf8_file_name_is_listed_with_its_error(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "yes").mkdir(parents=True)
    name = os.fsdecode(b"caf\xe9.png")
    save_image(root / "yes" / name, np.zeros((4, 4), np.uint8))
    listing, _ = list_source({"kind": "folder", "root": str(root)}, "image")
    row = listing.iloc[0]
    assert row["id"] == "yes/caf\\xe9.png" and row["under"] == ""
    assert row["listing_error"] == "file name is not valid UTF-8 (b'yes/caf\\xe9.png'); rename the file"
    listing.to_parquet(tmp_path / "listing.parquet")  # storable as it is


def test_source_query_selects_a_subset(tmp_path: Path) -> None:
    rows = [{"path": f"{i}.png", "label": str(i % 2), "index": str(i)} for i in range(4)]
    listing, report = list_source(_csv_source(tmp_path, rows, query="index >= 2"), "image")
    assert listing["index"].tolist() == ["2", "3"]
    assert (report["listed"], report["excluded_by_query"], report["seen"]) == (4, 2, 2)


def test_source_query_that_cannot_be_evaluated_is_named(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="source query"):
        list_source(_csv_source(tmp_path, [{"path": "a.png", "label": "0"}], query="speaker == 'x'"), "image")


def test_bad_settings(tmp_path: Path) -> None:
    source = _csv_source(tmp_path / "data", [{"path": "a.wav", "label": "yes"}])
    with pytest.raises(IngestError, match="modality"):
        list_source(source, "video")
    with pytest.raises(IngestError, match="no column"):
        list_source({**source, "label_column": "class"}, "audio")
    with pytest.raises(IngestError, match="not a folder"):
        list_source({**source, "root": str(tmp_path / "nowhere")}, "audio")
    with pytest.raises(IngestError, match="kind"):
        list_source({**source, "kind": "zip"}, "audio")


def test_noise_listing_and_none(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "noise").mkdir(parents=True)
    pd.DataFrame({"path": ["car.wav"], "kind": ["car"], "pool": ["augment"]}).to_csv(root / "noise/m.csv", index=False)
    noise = list_noise(root, {"manifest": str(root / "noise/m.csv"), "group_column": "kind"})
    assert noise[["id", "under", "group", "pool"]].values.tolist() == [["car.wav", "noise/car.wav", "car", "augment"]]
    assert list_noise(root, None).empty


def test_columns_the_stages_add_are_reserved(tmp_path: Path) -> None:
    for column in ("status", "dup_group", "resolved", "source:width"):
        with pytest.raises(IngestError, match="clash"):
            list_source(_csv_source(tmp_path, [{"path": "a.wav", "label": "yes", column: "x"}]), "audio")
    (tmp_path / "noise").mkdir()
    pd.DataFrame({"path": ["n.wav"], "group": ["car"], "pool": ["test"], "label": ["x"]}).to_csv(
        tmp_path / "noise/m.csv", index=False
    )
    with pytest.raises(IngestError, match="clash"):
        list_noise(tmp_path, {"manifest": str(tmp_path / "noise/m.csv")})
