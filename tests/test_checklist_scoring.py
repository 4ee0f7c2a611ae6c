"""Scoring candidates: embedding realism, the per-model reference (each real file decoded once), scoring from
arrays in memory, and batched computations equal to the per-sample ones."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from curation import checklist as checklist_module
from curation.checklist import (
    IMAGE_STATS,
    SCORE_COLUMNS,
    Checklist,
    Reference,
    _log_mels,
    build_reference,
    embedding_realism,
    model_predictor,
    quality_stats,
    realism,
    retention,
    stats_table,
    verdicts,
)
from curation.conditions import load_sample
from curation.features import load_inputs, log_mel
from curation.media import save_audio, save_image
from curation.models import build_model
from curation.train import embed, predict_proba

AUDIO = {"sample_rate": 8000, "seconds": 0.5, "n_fft": 256, "hop": 80, "n_mels": 20}
IMAGE = {"size": 8, "channels": 1}
LATTICE = np.arange(20, dtype=float)[:, None]  # 20 real embeddings 0, 1, ..., 19 on a line


def test_embedding_farther_than_every_real_sample_scores_one_over_n_plus_one():
    assert embedding_realism(np.array([[1000.0], [-50.0]]), LATTICE).tolist() == [1 / 21, 1 / 21]


def test_embedding_equal_to_a_typical_real_sample_scores_one():
    # 5th nearest of 10 among the others is 3 away (no real sample's is nearer); 10 itself has it 2 away.
    assert embedding_realism(np.array([[10.0]]), LATTICE)[0] == 1.0


def test_embedding_realism_ranks_the_distance_among_the_real_samples_own():
    # Leave-one-out 5th-nearest distances of the lattice: 5, 4, then 3 (x16), then 4, 5.
    points = np.array([[-1.2], [-0.5], [0.6], [10.5]])  # 5th-nearest distances 5.2, 4.5, 3.4, 2.5
    assert embedding_realism(points, LATTICE).tolist() == [1 / 21, 3 / 21, 5 / 21, 1.0]


def test_embedding_realism_standardises_features_so_a_wide_one_does_not_drown_a_narrow_one():
    rng = np.random.default_rng(0)
    ref = np.column_stack([rng.normal(0, 1000, 200), rng.normal(0, 1, 200)])
    odd = np.array([[0.0, 8.0]])  # ordinary on the wide feature, 8 standard deviations out on the narrow one
    assert embedding_realism(odd, ref)[0] == 1 / 201


def test_embedding_realism_needs_two_real_samples():
    with pytest.raises(ValueError, match="at least 2 real reference samples"):
        embedding_realism(np.zeros((1, 3)), np.zeros((1, 3)))


def _images(tmp_path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """20 real training images of noise whose corner pixel is 0..19, and two candidates: a copy of image 10,
    and image 10 with its corner at 255 (the corner is in neither the Laplacian nor, here, any real image)."""
    rng = np.random.default_rng(1)
    rows = []
    for k in range(20):
        img = rng.integers(0, 256, (8, 8)).astype(np.uint8)
        img[0, 0] = k
        save_image(tmp_path / f"r{k}.png", img)
        rows.append({"id": f"r{k}", "path": str(tmp_path / f"r{k}.png"), "label": "a", "split": "train"})
    source = load_sample(str(tmp_path / "r10.png"), "image", IMAGE)
    far = source.copy()
    far[0, 0] = 255
    save_image(tmp_path / "same.png", source)
    save_image(tmp_path / "far.png", far)
    cands = pd.DataFrame(
        {"id": ["same", "far"], "path": [str(tmp_path / "same.png"), str(tmp_path / "far.png")],
         "label": ["a", "b"], "source_id": ["r10", "r10"], "target_slice": ["condition=dark"] * 2}
    )  # fmt: skip
    return cands, pd.DataFrame(rows)


class CornerModel:
    """A stand-in model: the embedding is the corner pixel; p(a) = 0.8. Counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        feats = np.array([[float(x[0, 0])] for x in arrays])
        return np.tile([0.8, 0.2], (len(arrays), 1)), feats


def _checklist(tmp_path: Path) -> tuple[pd.DataFrame, Checklist, CornerModel, list[str]]:
    """The two candidates, and a checklist over the 20 real images with the corner model (files decoded are
    logged)."""
    cands, real = _images(tmp_path)
    model, loaded = CornerModel(), []

    def load(path: str) -> np.ndarray:
        loaded.append(path)
        return load_sample(path, "image", IMAGE)

    reference = build_reference(real["path"].tolist(), model, load, "image", IMAGE)
    sources = real.set_index("id")["path"].to_dict()
    return cands, Checklist(reference, real, sources, ["a", "b"], model, "image", IMAGE), model, loaded


def _arrays(cands: pd.DataFrame, tmp_path: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The candidates' source and output arrays, as the augment stage holds them."""
    source = load_sample(str(tmp_path / "r10.png"), "image", IMAGE)
    return [source] * len(cands), [load_sample(p, "image", IMAGE) for p in cands["path"]]


def _score(tmp_path: Path) -> tuple[pd.DataFrame, CornerModel, list[str]]:
    cands, checklist, model, loaded = _checklist(tmp_path)
    return checklist.score(cands, *_arrays(cands, tmp_path)), model, loaded


def test_candidate_the_model_sees_unlike_any_real_sample_is_least_typical_by_embedding(tmp_path):
    scores, _, _ = _score(tmp_path)
    far = scores.set_index("id").loc["far"]
    assert far["least_typical"] == "embedding"
    assert far["realism"] == far["embedding_realism"] == 1 / 21


def test_candidate_equal_to_a_real_sample_is_realistic_by_both_views(tmp_path):
    same = _score(tmp_path)[0].set_index("id").loc["same"]
    real = stats_table([load_sample(str(tmp_path / f"r{k}.png"), "image", IMAGE) for k in range(20)], "image")
    by_stats = realism(stats_table([load_sample(str(tmp_path / "same.png"), "image", IMAGE)], "image"), real)[0]
    assert same["embedding_realism"] == 1.0 and same["realism"] == by_stats and same["least_typical"] in IMAGE_STATS
    assert same["retention"] == pytest.approx(1.0) and same["clarity"] == pytest.approx(0.8)
    assert same["weakness"] == pytest.approx(0.2) and same["p_source"] == pytest.approx(0.8)


def test_the_reference_decodes_each_real_file_once_and_scoring_reads_no_file(tmp_path):
    _, model, loaded = _score(tmp_path)
    assert model.calls == 2  # once for the reference, once for the batch of candidates
    assert len(loaded) == len(set(loaded)) == 20  # the 20 real images; no candidate, no source read again


def test_scoring_in_batches_equals_scoring_at_once(tmp_path):
    cands, checklist, _, _ = _checklist(tmp_path)
    sources, outputs = _arrays(cands, tmp_path)
    whole = checklist.score(cands, sources, outputs)
    parts = [checklist.score(cands.iloc[[k]], sources[k : k + 1], outputs[k : k + 1]) for k in range(len(cands))]
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole)


def test_no_candidates_give_an_empty_table_that_verdicts_and_counts_accept(tmp_path):
    cands, checklist, model, _ = _checklist(tmp_path)
    scores = checklist.score(cands.iloc[:0], [], [])
    assert list(scores.columns) == list(SCORE_COLUMNS) and len(scores) == 0 and model.calls == 1  # the reference's
    judged = verdicts(scores, {"realism_min": 0.01, "clarity_reject": 0.3, "clarity_accept": 0.6, "weakness_min": 0.02})
    assert judged.groupby(["target_slice", "verdict"]).size().empty


def test_scoring_needs_one_source_and_one_output_per_candidate(tmp_path):
    cands, checklist, _, _ = _checklist(tmp_path)
    sources, outputs = _arrays(cands, tmp_path)
    with pytest.raises(ValueError, match="2 candidates need 2 sources and 2 outputs, got 1 and 2"):
        checklist.score(cands, sources[:1], outputs)


def test_a_source_missing_from_the_reference_is_named(tmp_path):
    cands, checklist, _, _ = _checklist(tmp_path)
    checklist.source_paths["r10"] = "elsewhere/r10.png"
    with pytest.raises(ValueError, match=r"not in the checklist reference, e\.g\. .elsewhere/r10\.png."):
        checklist.score(cands, *_arrays(cands, tmp_path))


def test_a_target_without_real_samples_is_refused(tmp_path):
    cands, real = _images(tmp_path)
    model = CornerModel()
    reference = build_reference(real["path"].tolist(), model, lambda p: load_sample(p, "image", IMAGE), "image", IMAGE)
    dev_only = real.assign(split="dev")  # no training data, and no row of the target slice
    checklist = Checklist(reference, dev_only, {"r10": real["path"][10]}, ["a", "b"], model, "image", IMAGE)
    with pytest.raises(ValueError, match="realism for 'condition=dark' needs real reference samples"):
        checklist.score(cands, *_arrays(cands, tmp_path))


def test_targets_with_the_same_real_rows_share_one_fitted_reference_and_others_get_their_own(tmp_path):
    cands, real = _images(tmp_path)
    model = CornerModel()
    reference = build_reference(real["path"].tolist(), model, lambda p: load_sample(p, "image", IMAGE), "image", IMAGE)
    real = real.assign(condition="clean")
    real.loc[5, ["split", "condition"]] = ["dev", "blur"]  # blur's one real example; not training data
    checklist = Checklist(reference, real, {"r10": real["path"][10]}, ["a", "b"], model, "image", IMAGE)
    assert checklist._target("condition=dark") is checklist._target("condition=noisy")  # 19 training rows each
    both = pd.concat([cands, cands.assign(target_slice="condition=blur")], ignore_index=True)
    far = checklist.score(both, *_arrays(both, tmp_path)).set_index(["target_slice", "id"])["embedding_realism"]
    assert far["condition=dark", "far"] == 1 / 20 and far["condition=blur", "far"] == 1 / 21  # + blur's example


def test_reference_round_trips_through_its_file(tmp_path):
    _, checklist, _, _ = _checklist(tmp_path)
    ref = checklist.reference
    ref.save(tmp_path / "ref.npz")
    back = Reference.load(tmp_path / "ref.npz")
    assert back.paths.tolist() == ref.paths.tolist() and back.stat_names == ref.stat_names == IMAGE_STATS
    for name in ("stats", "features", "probs"):
        assert np.array_equal(getattr(back, name), getattr(ref, name))


def _flat(arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """A stand-in model: p = (0.5, 0.5) and the same feature for every sample."""
    return np.tile([0.5, 0.5], (len(arrays), 1)), np.zeros((len(arrays), 1))


def test_an_audio_reference_keeps_each_files_log_mel_and_round_trips_with_them(tmp_path):
    paths, media = _model_inputs_on_disk(tmp_path, "audio")
    arrays = [load_sample(p, "audio", media) for p in paths]
    ref = build_reference(paths, _flat, lambda p: load_sample(p, "audio", media), "audio", media, batch=2)
    for k, x in enumerate(arrays):  # batch=2: the third file's comes from a second pass
        alone = log_mel(torch.from_numpy(x[None]), media["sample_rate"], media["n_fft"], media["hop"], media["n_mels"])
        np.testing.assert_allclose(ref.mel(k, media), alone[0].numpy().ravel(), rtol=1e-6, atol=1e-5)
    assert ref.mel(0, media | {"hop": media["hop"] * 2}) is None  # made with other settings: not used
    ref.save(tmp_path / "ref.npz")
    back = Reference.load(tmp_path / "ref.npz")
    assert back.mel_settings == ref.mel_settings == (8000, 256, 80, 20)
    assert np.array_equal(back.mels, ref.mels) and np.array_equal(back.mel_starts, ref.mel_starts)
    older = {k: v for k, v in np.load(tmp_path / "ref.npz").items() if not k.startswith("mel")}
    np.savez(tmp_path / "older.npz", **older)  # a reference written before it kept log-mels
    assert Reference.load(tmp_path / "older.npz").mel(0, media) is None


def test_a_real_clip_too_short_for_a_log_mel_has_none_in_the_reference_and_the_rest_are_kept(tmp_path):
    paths, media = _model_inputs_on_disk(tmp_path, "audio")
    save_audio(tmp_path / "blip.wav", np.full(100, 0.1, np.float32), media["sample_rate"])  # <= n_fft // 2
    paths.append(str(tmp_path / "blip.wav"))
    ref = build_reference(paths, _flat, lambda p: load_sample(p, "audio", media), "audio", media)
    assert ref.mel(3, media) is None and all(ref.mel(k, media) is not None for k in range(3))


def test_an_audio_reference_keeps_the_log_mels_of_the_sources_it_is_told_only(tmp_path):
    paths, media = _model_inputs_on_disk(tmp_path, "audio")
    ref = build_reference(paths, _flat, lambda p: load_sample(p, "audio", media), "audio", media, sources={paths[1]})
    every = build_reference(paths, _flat, lambda p: load_sample(p, "audio", media), "audio", media)
    assert ref.mel(0, media) is None and ref.mel(2, media) is None
    assert np.array_equal(ref.mel(1, media), every.mel(1, media)) and ref.mels.size == every.mel(1, media).size


def test_a_reference_refuses_log_mels_that_do_not_fit_its_rows(tmp_path):
    paths, media = _model_inputs_on_disk(tmp_path, "audio")
    ref = build_reference(paths, _flat, lambda p: load_sample(p, "audio", media), "audio", media)
    fields = {f: getattr(ref, f) for f in ("paths", "stats", "features", "probs", "stat_names")}
    with pytest.raises(ValueError, match="log-mels with their starts and settings, or none"):
        Reference(**fields, mels=ref.mels, mel_starts=ref.mel_starts)
    with pytest.raises(ValueError, match="do not fit its 3 rows"):
        Reference(**fields, mels=ref.mels, mel_starts=ref.mel_starts[:-1], mel_settings=ref.mel_settings)


def _model_inputs_on_disk(tmp_path: Path, modality: str) -> tuple[list[str], dict]:
    """Files of different sizes, so that prediction has to resize, crop and pad."""
    rng = np.random.default_rng(2)
    paths = []
    for k, n in enumerate((3000, 4000, 6500)):
        if modality == "audio":
            save_audio(tmp_path / f"{k}.wav", 0.3 * rng.standard_normal(n).astype(np.float32), AUDIO["sample_rate"])
            paths.append(str(tmp_path / f"{k}.wav"))
        else:
            save_image(tmp_path / f"{k}.png", rng.integers(0, 256, (n // 500, 9)).astype(np.uint8))
            paths.append(str(tmp_path / f"{k}.png"))
    return paths, AUDIO if modality == "audio" else IMAGE


@pytest.mark.parametrize("modality", ["image", "audio"])
def test_prediction_from_decoded_samples_equals_prediction_from_their_files(tmp_path, modality):
    paths, media = _model_inputs_on_disk(tmp_path, modality)
    torch.manual_seed(0)
    model = build_model(modality, 3, {modality: media}).eval()
    probs, feats = model_predictor(model, modality, media)([load_sample(p, modality, media) for p in paths])
    x = load_inputs(paths, modality, {modality: media})
    assert np.array_equal(probs, predict_proba(model, x)) and np.array_equal(feats, embed(model, x))


@pytest.mark.parametrize("modality", ["image", "audio"])
def test_statistics_table_equals_the_statistics_of_each_sample(tmp_path, modality):
    paths, media = _model_inputs_on_disk(tmp_path, modality)
    arrays = [load_sample(p, modality, media) for p in paths * 2]
    table = stats_table(arrays, modality, media.get("sample_rate"))
    assert table.to_dict("records") == [quality_stats(x, modality, media.get("sample_rate")) for x in arrays]


def test_log_mels_of_clips_of_many_lengths_in_one_call_are_those_of_each_clip_alone():
    rng = np.random.default_rng(3)
    clips = [rng.standard_normal(n).astype(np.float32) for n in (129, 1000, 4321, 4321, 8000)]
    mels = _log_mels(clips, AUDIO)
    for i, x in enumerate(clips):
        alone = log_mel(torch.from_numpy(x[None]), AUDIO["sample_rate"], AUDIO["n_fft"], AUDIO["hop"], AUDIO["n_mels"])
        np.testing.assert_allclose(mels[i], alone[0].numpy().ravel(), rtol=1e-6, atol=1e-5)  # float rounding


def test_log_mel_of_a_clip_shorter_than_half_the_fft_is_refused():
    with pytest.raises(ValueError, match="too short"):
        _log_mels([np.zeros(128, np.float32)], AUDIO)


def _noisy(source: np.ndarray, modality: str, levels: tuple[float, ...]) -> list[np.ndarray]:
    """Copies of a source with more and more noise."""
    rng = np.random.default_rng(3)
    low, high = (0, 255) if modality == "image" else (-1, 1)
    return [np.clip(source + rng.normal(0, s * high, source.shape), low, high).astype(source.dtype) for s in levels]


@pytest.mark.parametrize(
    ("modality", "in_reference", "cache", "represented"),
    [
        ("image", False, 2**20, [3 + 2, 2]),  # each source once (the first batch: 3 outputs, 2 sources)
        ("image", False, 0, [3 + 2, 2 + 2]),  # no room to keep them: again in every batch
        ("audio", True, 2**20, [3, 2]),  # the reference's log-mels: no source's made here
        ("audio", True, 0, [3, 2]),
        ("audio", False, 2**20, [3 + 2, 2]),  # too many for the reference to keep
        ("audio", False, 0, [3 + 2, 2 + 2]),
    ],
)
def test_checklist_retention_equals_retention_of_each_pair_and_represents_each_source_once(
    tmp_path, modality, in_reference, cache, represented, monkeypatch
):
    monkeypatch.setattr(checklist_module, "SOURCE_CACHE_BYTES", cache)
    monkeypatch.setattr(checklist_module, "REFERENCE_MEL_BYTES", 2**20 if in_reference else 0)
    paths, media = _model_inputs_on_disk(tmp_path, modality)
    arrays = [load_sample(p, modality, media) for p in paths]
    reference = build_reference(paths, _flat, lambda p: load_sample(p, modality, media), modality, media)
    assert (reference.mels is not None) == in_reference
    real = pd.DataFrame({"id": ["s0", "s1", "s2"], "path": paths, "label": "a", "split": "train"})
    sources = dict(zip(real["id"], paths, strict=True))
    checklist = Checklist(reference, real, sources, ["a", "b"], _flat, modality, media)
    made = []
    represent = checklist_module._representations
    monkeypatch.setattr(checklist_module, "_representations",
                        lambda xs, *args: made.append(len(xs)) or represent(xs, *args))  # fmt: skip
    two, zero = _noisy(arrays[2], modality, (0.01, 0.1, 0.4)), _noisy(arrays[0], modality, (0.1,))
    batches = [(["s2", "s2", "s0"], [two[0], two[1], zero[0]]), (["s2", "s0"], [two[2], zero[0]])]
    kept = []
    for ids, outputs in batches:
        rows = pd.DataFrame({"id": [f"c{len(kept) + k}" for k in range(len(ids))], "target_slice": "condition=x",
                             "label": "a", "source_id": ids, "path": "unused"})  # fmt: skip
        kept += checklist.score(rows, [arrays[int(i[1])] for i in ids], outputs)["retention"].tolist()
    assert made == represented
    expected = [retention(arrays[2], two[0], modality, media), retention(arrays[2], two[1], modality, media),
                retention(arrays[0], zero[0], modality, media), retention(arrays[2], two[2], modality, media),
                retention(arrays[0], zero[0], modality, media)]  # fmt: skip
    assert kept == expected  # the same bits, wherever a source's log-mel was made
    assert 1 > expected[0] > expected[1] > expected[3] > 0


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 3000), min_size=1, max_size=6), st.integers(0, 2**32 - 1))
def test_audio_statistics_of_a_clip_do_not_depend_on_the_others_in_the_call(lengths, seed):
    rng = np.random.default_rng(seed)
    clips = [(rng.uniform(0.0, 1.2) * rng.standard_normal(n)).clip(-1, 1).astype(np.float32) for n in lengths]
    table = stats_table(clips, "audio", 8000)
    assert table.to_dict("records") == [quality_stats(x, "audio", 8000) for x in clips]
    assert np.isfinite(table.to_numpy()).all()
