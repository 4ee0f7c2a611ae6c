"""Source choice and generation of augmentation candidates."""

import json

import pandas as pd
import pytest

from curation.candidates import pick_sources


def test_sources_are_seeded_and_cycle_over_the_training_set():
    train = pd.DataFrame({"id": ["s3", "s1", "s2"]})
    first = pick_sources(train, 7, seed=1, target="condition=dark")
    assert first == pick_sources(train.iloc[::-1], 7, seed=1, target="condition=dark")
    assert sorted(first[:3]) == ["s1", "s2", "s3"] and first[3:6] == first[:3]
    assert first != pick_sources(train, 7, seed=2, target="condition=dark")


def _tiny_split(tmp_path):
    import numpy as np

    from curation.manifest import file_sha256
    from curation.media import save_image

    rows = []
    for i in range(6):
        path = tmp_path / "src" / f"{i}.png"
        img = np.zeros((12, 12), np.uint8)
        img[2:10, 3 + i % 3 : 6 + i % 3] = 200
        img[0, i] = 90  # no two sources alike
        save_image(path, img)
        rows.append(
            {"id": f"s{i}", "path": str(path), "label": str(i % 2), "split": "train", "sha256": file_sha256(path)}
        )
    return pd.DataFrame(rows)


def test_candidates_record_what_made_them_and_regenerate_bit_for_bit(tmp_path):
    from curation.candidates import generate_candidates

    split = _tiny_split(tmp_path)
    targets = [{"slice": "condition=dark", "priority": 0.3}, {"slice": "speaker=x", "priority": 0.1}]
    policies = {
        "condition=dark": [
            {
                "name": "RandomBrightnessContrast",
                "brightness_limit": [-0.3, 0.0],
                "contrast_limit": [-0.6, -0.2],
                "p": 1.0,
            }
        ]
    }
    args = (split, pd.DataFrame(), targets, policies, 5, "image", {"channels": 1}, 11)
    first, plan = generate_candidates(*args, tmp_path / "a")
    again, _ = generate_candidates(*args, tmp_path / "b")
    assert plan == {
        "budget": 5,
        "oversample": 1,
        "allocation": {"condition=dark": 5},
        "targets_without_policy": ["speaker=x"],
        "duplicates_dropped": {"condition=dark": 0},
    }
    assert first["sha256"].tolist() == again["sha256"].tolist()
    assert first["id"].tolist() == [f"aug/condition=dark/{k:05d}" for k in range(5)]
    assert set(first["source_id"]) <= set(split["id"])
    assert (first["target_slice"] == "condition=dark").all() and (first["split"] == "train").all()
    assert all(rec[0]["name"] == "RandomBrightnessContrast" for rec in first["augment_params"].map(json.loads))


def test_a_candidate_file_is_named_by_its_content_so_another_seed_gives_the_same_id_another_path(tmp_path):
    """Review decisions record the path decided on: a candidate id remade differently must not keep its path."""
    from curation.candidates import generate_candidates
    from curation.manifest import file_sha256

    split = _tiny_split(tmp_path)
    targets = [{"slice": "condition=dark", "priority": 1.0}]
    policies = {"condition=dark": [{"name": "RandomBrightnessContrast", "brightness_limit": [-0.5, -0.1], "p": 1.0}]}
    args = (split, pd.DataFrame(), targets, policies, 4, "image", {"channels": 1})
    one, _ = generate_candidates(*args, 1, tmp_path / "out")
    same, _ = generate_candidates(*args, 1, tmp_path / "out")
    other, _ = generate_candidates(*args, 2, tmp_path / "out")
    assert one["path"].tolist() == same["path"].tolist()
    assert one["id"].tolist() == other["id"].tolist()
    assert not set(one["path"]) & set(other["path"])
    for r in pd.concat([one, other]).itertuples():
        assert file_sha256(r.path) == r.sha256 and r.path.endswith(f"/{r.sha256[:16]}.png")


def test_oversampling_makes_more_candidates_per_budgeted_sample_and_keeps_the_first_ones(tmp_path):
    from curation.candidates import generate_candidates

    split = _tiny_split(tmp_path)
    targets = [{"slice": "condition=dark", "priority": 0.3}]
    policies = {"condition=dark": [{"name": "GaussianBlur", "blur_limit": [3, 5], "p": 1.0}]}
    args = (split, pd.DataFrame(), targets, policies, 3, "image", {"channels": 1}, 11)
    plain, _ = generate_candidates(*args, tmp_path / "a")
    more, plan = generate_candidates(*args, tmp_path / "b", oversample=3)
    assert plan["allocation"] == {"condition=dark": 3} and plan["oversample"] == 3 and len(more) == 9
    assert more["sha256"].tolist()[:3] == plain["sha256"].tolist()


def test_oversample_must_be_a_positive_integer(tmp_path):

    from curation.candidates import generate_candidates

    args = (_tiny_split(tmp_path), pd.DataFrame(), [], {}, 3, "image", {"channels": 1}, 11, tmp_path / "a")
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="oversample"):
            generate_candidates(*args, oversample=bad)


def test_a_repeated_training_id_is_named(tmp_path):
    from curation.candidates import generate_candidates

    split = _tiny_split(tmp_path)
    split = pd.concat([split, split.iloc[[1]]], ignore_index=True)
    args = (split, pd.DataFrame(), [], {}, 3, "image", {"channels": 1}, 11, tmp_path / "a")
    with pytest.raises(ValueError, match=f"ids must be unique to be sources; {split['id'][1]!r} is repeated"):
        generate_candidates(*args)


def _tiny_audio(tmp_path):
    import numpy as np

    from curation.manifest import file_sha256
    from curation.media import save_audio

    sr, rows = 8000, []
    t = np.arange(sr // 2) / sr
    for i in range(4):
        path = tmp_path / "src" / f"{i}.wav"
        save_audio(path, (0.3 * np.sin(2 * np.pi * (200 + 100 * i) * t)).astype(np.float32), sr)
        rows.append(
            {"id": f"s{i}", "path": str(path), "label": str(i % 2), "split": "train", "sha256": file_sha256(path)}
        )
    noise_path = tmp_path / "noise" / "hum.wav"
    save_audio(noise_path, np.random.default_rng(0).normal(0, 0.1, sr).astype(np.float32), sr)
    noise = pd.DataFrame({"id": ["hum.wav"], "path": [str(noise_path)], "group": ["machine"], "pool": ["augment"]})
    return pd.DataFrame(rows), noise


def test_parallel_generation_gives_the_serial_bytes(tmp_path):
    from curation.candidates import generate_candidates

    split, noise = _tiny_audio(tmp_path)
    targets = [{"slice": "condition=hum", "priority": 0.2}, {"slice": "condition=phone", "priority": 0.1}]
    policies = {
        "condition=hum": [{"name": "BackgroundNoise", "groups": ["machine"], "min_snr_db": 0, "max_snr_db": 10}],
        "condition=phone": [{"name": "Telephone"}, {"name": "Gain", "min_gain_db": -6, "max_gain_db": 6}],
    }
    args = (split, noise, targets, policies, 9, "audio", {"sample_rate": 8000}, 5)
    serial, _ = generate_candidates(*args, tmp_path / "serial", path_root=tmp_path / "out")
    parallel, _ = generate_candidates(*args, tmp_path / "parallel", path_root=tmp_path / "out", workers=2)
    pd.testing.assert_frame_equal(serial, parallel)
    assert serial["target_slice"].value_counts().to_dict() == {"condition=hum": 6, "condition=phone": 3}
    for rel in serial["path"].str.replace(str(tmp_path / "out"), "", regex=False):
        assert (tmp_path / f"serial{rel}").read_bytes() == (tmp_path / f"parallel{rel}").read_bytes()


@pytest.mark.parametrize("workers", [1, 2])
def test_candidates_reach_the_sink_in_batches_in_table_order_with_their_arrays(tmp_path, monkeypatch, workers):
    import numpy as np

    from curation import candidates
    from curation.conditions import load_sample

    monkeypatch.setattr(candidates, "SINK_BATCH", 4)
    split, noise = _tiny_audio(tmp_path)
    policies = {"condition=phone": [{"name": "Telephone"}, {"name": "Gain", "min_gain_db": -6, "max_gain_db": 6}]}
    seen: list[tuple[pd.DataFrame, list, list]] = []
    cands, _ = candidates.generate_candidates(
        split, noise, [{"slice": "condition=phone", "priority": 1.0}], policies, 9, "audio", {"sample_rate": 8000},
        5, tmp_path / "out", workers=workers, on_batch=lambda rows, xs, ys: seen.append((rows, xs, ys)),
    )  # fmt: skip
    assert [len(rows) for rows, _, _ in seen] == [4, 4, 1]
    assert pd.concat([rows for rows, _, _ in seen])["id"].tolist() == cands["id"].tolist()
    paths = split.set_index("id")["path"]
    for rows, xs, ys in seen:
        for row, x, y in zip(rows.itertuples(), xs, ys, strict=True):
            assert np.array_equal(x, load_sample(paths[row.source_id], "audio", {"sample_rate": 8000}))
            on_disk = load_sample(row.path, "audio", {"sample_rate": 8000})
            assert y.dtype == np.float32 and np.abs(on_disk - y).max() <= 1 / 32767  # the file is 16-bit PCM


def test_a_candidate_that_repeats_another_or_copies_a_training_sample_is_dropped_and_counted(tmp_path):
    """Telephone alone is deterministic: cycling over 4 sources for 9 candidates makes 5 repeats. A policy that
    changes nothing (p=0) makes copies of its sources, which are not written."""
    from curation.candidates import generate_candidates

    split, noise = _tiny_audio(tmp_path)
    phone = {"condition=phone": [{"name": "Telephone"}]}
    scored: list[str] = []
    cands, plan = generate_candidates(
        split, noise, [{"slice": "condition=phone", "priority": 1.0}], phone, 9, "audio", {"sample_rate": 8000}, 5,
        tmp_path / "phone", on_batch=lambda rows, xs, ys: scored.extend(rows["id"]),
    )  # fmt: skip
    assert len(cands) == 4 and cands["sha256"].is_unique and scored == cands["id"].tolist()
    assert plan["duplicates_dropped"] == {"condition=phone": 5}
    assert sorted(p.name for p in (tmp_path / "phone" / "files").iterdir()) == sorted(
        p.rsplit("/", 1)[1] for p in cands["path"]
    )

    images = _tiny_split(tmp_path)
    none = {"condition=dark": [{"name": "GaussianBlur", "blur_limit": [3, 5], "p": 0.0}]}
    copies, plan = generate_candidates(images, pd.DataFrame(), [{"slice": "condition=dark", "priority": 1.0}], none,
                                       4, "image", {"channels": 1}, 5, tmp_path / "none")  # fmt: skip
    assert copies.empty and plan["duplicates_dropped"] == {"condition=dark": 4}
    assert not (tmp_path / "none").exists()

    import soundfile as sf  # a 24-bit source: its copy would not re-encode to the source file's bytes

    deep = split.assign(path=[str(tmp_path / f"deep{i}.wav") for i in range(len(split))])
    for src, dst in zip(split["path"], deep["path"], strict=True):
        samples, sr = sf.read(src, dtype="float32")
        sf.write(dst, samples, sr, subtype="PCM_24")
    quiet = {"condition=phone": [{"name": "Gain", "min_gain_db": -6, "max_gain_db": 6, "p": 0.0}]}
    copies, plan = generate_candidates(deep, noise, [{"slice": "condition=phone", "priority": 1.0}], quiet, 3,
                                       "audio", {"sample_rate": 8000}, 5, tmp_path / "deep")  # fmt: skip
    assert copies.empty and plan["duplicates_dropped"] == {"condition=phone": 3}


def test_generate_candidates_passes_the_min_share_to_the_allocation(tmp_path):
    from curation.candidates import generate_candidates

    split = _tiny_split(tmp_path)
    targets = [{"slice": "condition=dark", "priority": 0.9}, {"slice": "condition=blur", "priority": 0.01}]
    policies = {
        "condition=dark": [{"name": "RandomBrightnessContrast", "brightness_limit": [-0.3, 0.0], "p": 1.0}],
        "condition=blur": [{"name": "GaussianBlur", "blur_limit": [3, 5], "p": 1.0}],
    }
    args = (split, pd.DataFrame(), targets, policies, 10, "image", {"channels": 1}, 11)
    _, plain = generate_candidates(*args, tmp_path / "a")
    cands, floored = generate_candidates(*args, tmp_path / "b", min_share=0.3)
    assert plain["allocation"] == {"condition=dark": 10, "condition=blur": 0}
    assert floored["allocation"] == {"condition=dark": 7, "condition=blur": 3}
    assert cands["target_slice"].value_counts().to_dict() == {"condition=dark": 7, "condition=blur": 3}
