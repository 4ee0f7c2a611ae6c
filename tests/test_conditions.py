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


def _noise_table():
    """Two groups of augment clips (clusters = recordings, two cuts of r1) and one test clip."""
    return pd.DataFrame(
        {
            "id": ["m/a", "m/b", "m/c", "m/d", "m/e", "h/a", "h/b", "t/a"],
            "path": ["x"] * 8,
            "group": ["machine"] * 5 + ["human"] * 2 + ["machine"],
            "pool": ["augment"] * 7 + ["test"],
            "rec": ["r1", "r1", "r2", "r3", "r4", "r5", "r6", "r1"],
        }
    )


def test_dev_noise_is_a_seeded_share_of_each_groups_augment_recordings():
    from curation.conditions import DEV_NOISE_POOL, hold_out_dev_noise

    noise = _noise_table()
    out = hold_out_dev_noise(noise, 0.5, seed=7, cluster="rec")
    dev = out[out["pool"] == DEV_NOISE_POOL]
    # machine: round(0.5 x 4 recordings) = 2 of them (r1's two cuts go together); human: 1 of 2
    assert dev.groupby("group")["rec"].nunique().to_dict() == {"human": 1, "machine": 2}
    assert set(dev["rec"]).isdisjoint(out.loc[out["pool"] == "augment", "rec"])
    assert out.loc[out["id"] == "t/a", "pool"].item() == "test" and noise["pool"].eq("augment").sum() == 7
    shuffled = hold_out_dev_noise(noise.iloc[::-1], 0.5, seed=7, cluster="rec")
    assert sorted(shuffled.loc[shuffled["pool"] == DEV_NOISE_POOL, "id"]) == sorted(dev["id"])
    by_clip = hold_out_dev_noise(noise, 0.01, seed=7)  # at least one clip per group, each clip its own cluster
    assert by_clip[by_clip["pool"] == DEV_NOISE_POOL].groupby("group").size().to_dict() == {"human": 1, "machine": 1}


def test_dev_noise_needs_two_clusters_per_kind_and_a_share_inside_0_1():
    from curation.conditions import hold_out_dev_noise

    noise = _noise_table()
    with pytest.raises(ValueError, match=r"noise group 'human' has 1 augment cluster\(s\)"):
        hold_out_dev_noise(noise.assign(rec=noise["rec"].str[0]), 0.5, seed=7, cluster="rec")
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        hold_out_dev_noise(noise, 1.0, seed=7)
    with pytest.raises(ValueError, match="lacks column"):
        hold_out_dev_noise(noise, 0.5, seed=7, within="category")


def test_dev_conditions_draw_from_the_dev_pool_when_there_is_one():
    from curation.conditions import noise_pool_for

    noise = _noise_table()
    assert noise_pool_for(noise, "dev") == "augment" and noise_pool_for(noise, "test") == "test"
    held = noise.assign(pool=["dev", *noise["pool"].tolist()[1:]])
    assert noise_pool_for(held, "dev") == "dev" and noise_pool_for(held, "test") == "test"
    assert noise_pool_for(pd.DataFrame(), "dev") == "augment"


def test_dev_conditions_mix_only_held_out_noise(tmp_path):
    from curation.conditions import hold_out_dev_noise
    from curation.media import save_audio

    sr, rng = 8000, np.random.default_rng(0)
    split_rows, noise_rows = [], []
    for i, part in enumerate(["dev", "dev", "dev", "test"]):
        path = tmp_path / "src" / f"{i}.wav"
        save_audio(path, (0.3 * np.sin(2 * np.pi * 300 * np.arange(sr // 2) / sr)).astype(np.float32), sr)
        split_rows.append({"id": f"s{i}", "path": str(path), "label": "0", "split": part, "sha256": file_sha256(path)})
    for name, pool in [("a", "augment"), ("b", "augment"), ("c", "augment"), ("t", "test")]:
        path = tmp_path / "noise" / f"{name}.wav"
        save_audio(path, rng.normal(0, 0.1, sr).astype(np.float32), sr)
        noise_rows.append({"id": name, "path": str(path), "group": "machine", "pool": pool})
    noise = hold_out_dev_noise(pd.DataFrame(noise_rows), 0.34, seed=3)
    held = set(noise.loc[noise["pool"] == "dev", "id"])
    cond = {"hum": [{"name": "BackgroundNoise", "groups": ["machine"], "min_snr_db": 5, "max_snr_db": 5}]}
    args = (pd.DataFrame(split_rows), "dev", cond, "audio", {"sample_rate": sr}, noise, 1, tmp_path / "out")
    dev = build_eval_set(*args)
    used = {json.loads(p)[0]["params"]["clip_id"] for p in dev.loc[dev["condition"] == "hum", "augment_params"]}
    assert len(held) == 1 and used == held
