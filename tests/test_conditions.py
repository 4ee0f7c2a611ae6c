"""Evaluation sets with stress-test conditions."""

import json

import numpy as np
import pandas as pd
import pytest

from curation.conditions import build_eval_set
from curation.manifest import file_sha256
from curation.media import save_image

DARK = {
    "dark": [{"name": "RandomBrightnessContrast", "brightness_limit": [0, 0], "contrast_limit": [-0.7, -0.7], "p": 1.0}]
}


def _split(tmp_path, extra=None):
    rows = []
    for i, part in enumerate(["train", "dev", "dev", "test"]):
        path = tmp_path / "src" / f"{i}.png"
        save_image(path, np.full((8, 8), 100 + i, np.uint8))
        rows.append({"id": f"s{i}", "path": str(path), "label": "0", "split": part, "sha256": file_sha256(path)})
    return pd.DataFrame(rows).assign(**(extra or {}))


def test_each_sample_appears_clean_and_under_every_condition(tmp_path):
    ev = build_eval_set(_split(tmp_path), "dev", DARK, "image", {"channels": 1}, pd.DataFrame(), 3, tmp_path / "out")
    assert sorted(ev["id"]) == ["s1", "s1@dark", "s2", "s2@dark"]
    dark = ev[ev["condition"] == "dark"].set_index("source_id")
    assert json.loads(dark.loc["s1", "augment_params"])[0]["name"] == "RandomBrightnessContrast"
    assert (ev[ev["condition"] == "clean"]["path"].str.contains("src")).all()


def test_metadata_column_named_like_an_added_one_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"\['condition'\] clash"):
        build_eval_set(
            _split(tmp_path, {"condition": "x"}),
            "dev",
            DARK,
            "image",
            {"channels": 1},
            pd.DataFrame(),
            3,
            tmp_path / "out",
        )


def test_metadata_columns_with_any_name_survive_into_derived_rows(tmp_path):
    """Column names that are not Python identifiers (a space, a dash, a leading digit) keep their values."""
    src = tmp_path / "src"
    save_image(src / "a.png", np.full((8, 8), 120, dtype=np.uint8))
    split_df = pd.DataFrame(
        {"id": ["a"], "path": [str(src / "a.png")], "label": ["0"], "split": ["dev"], "sha256": ["x"],
         "box count": ["3"], "light-level": ["low"], "2nd": ["y"]}
    )  # fmt: skip
    cond = {"dark": [{"name": "RandomBrightnessContrast", "brightness_limit": [-0.5, -0.5],
                      "contrast_limit": [0, 0], "p": 1.0}]}  # fmt: skip
    out = build_eval_set(split_df, "dev", cond, "image", {"size": 8, "channels": 1}, pd.DataFrame(), 1, tmp_path / "o")
    derived = out[out["condition"] == "dark"].iloc[0]
    assert (derived["box count"], derived["light-level"], derived["2nd"]) == ("3", "low", "y")


def test_a_condition_named_clean_is_refused(tmp_path):
    split_df = pd.DataFrame({"id": ["a"], "path": ["a.png"], "label": ["0"], "split": ["dev"], "sha256": ["x"]})
    with pytest.raises(ValueError, match="reserved"):
        build_eval_set(split_df, "dev", {"clean": []}, "image", {"size": 8}, pd.DataFrame(), 1, tmp_path)
