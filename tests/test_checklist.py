"""The checklist's scores and verdict rules, one test per rule."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from curation.checklist import least_typical, quality_stats, realism, retention, verdicts

THRESHOLDS = {"realism_min": 0.05, "clarity_reject": 0.3, "clarity_accept": 0.6, "weakness_min": 0.1}


def test_realism_of_a_value_outside_every_real_sample_is_two_over_n_plus_two():
    reference = pd.DataFrame({"mean": np.arange(10, 30, dtype=float)})  # 20 real samples
    cands = pd.DataFrame({"mean": [5.0, 19.5, 100.0]})
    scores = realism(cands, reference)
    assert scores[0] == pytest.approx(2 / 22)
    assert scores[1] == pytest.approx(1.0)
    assert scores[2] == pytest.approx(2 / 22)


def test_realism_takes_the_least_typical_statistic():
    reference = pd.DataFrame({"mean": np.arange(20.0), "std": np.arange(20.0)})
    cands = pd.DataFrame({"mean": [10.0], "std": [-1.0]})
    assert realism(cands, reference)[0] == pytest.approx(2 / 22)
    assert least_typical(cands, reference) == ["std"]


def test_realism_without_reference_is_an_error():
    with pytest.raises(ValueError, match="reference set is empty"):
        realism(pd.DataFrame({"mean": [1.0]}), pd.DataFrame({"mean": []}))


def test_image_quality_stats_see_exposure_contrast_and_sharpness():
    flat = np.full((16, 16), 40, dtype=np.uint8)
    checker = (np.indices((16, 16)).sum(axis=0) % 2 * 255).astype(np.uint8)
    assert quality_stats(flat, "image") == {"mean": 40.0, "std": 0.0, "sharpness": 0.0}
    stats = quality_stats(checker, "image")
    assert stats["mean"] == pytest.approx(127.5) and stats["sharpness"] > 1e5


def test_audio_quality_stats_see_clipping_silence_and_spectrum():
    sr = 8000
    t = np.arange(sr) / sr
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    stats = quality_stats(tone, "audio", sr)
    assert stats["centroid_hz"] == pytest.approx(1000, rel=0.01)
    assert stats["rms_db"] == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.01)
    assert stats["clip_frac"] == 0 and stats["silence_frac"] == 0
    half_silent = np.concatenate([np.zeros(sr // 2, np.float32), np.ones(sr // 2, np.float32)])
    stats = quality_stats(half_silent, "audio", sr)
    assert stats["silence_frac"] == pytest.approx(0.5) and stats["clip_frac"] == pytest.approx(0.5)


@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
def test_image_statistics_are_the_mean_the_spread_and_the_variance_of_the_interior_laplacian(dtype):
    img = np.random.default_rng(4).integers(0, 256, (23, 17)).astype(dtype)
    g = img.astype(np.float64)
    lap = 4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
    stats = quality_stats(img, "image")
    assert stats == pytest.approx({"mean": g.mean(), "std": g.std(), "sharpness": lap.var()}, rel=1e-12)


def test_audio_flatness_is_near_one_for_white_noise_and_near_zero_for_a_tone():
    sr = 8000
    noise = np.random.default_rng(5).normal(0, 0.1, sr).astype(np.float32)
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(sr) / sr)).astype(np.float32)
    assert quality_stats(noise, "audio", sr)["flatness"] > 0.8
    assert quality_stats(tone, "audio", sr)["flatness"] < 0.01
    assert quality_stats(noise, "audio", sr)["centroid_hz"] == pytest.approx(2000, rel=0.05)  # flat to 4 kHz


def test_a_clip_shorter_than_a_spectrum_frame_still_has_statistics():
    stats = quality_stats(np.full(100, 0.1, np.float32), "audio", 8000)
    assert np.isfinite(list(stats.values())).all() and stats["rms_db"] == pytest.approx(-20.0)


def test_retention_is_one_for_a_contrast_change_and_low_for_unrelated_content():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (16, 16)).astype(np.uint8)
    darker = (img * 0.4).astype(np.uint8)
    assert retention(img, darker, "image", {}) == pytest.approx(1.0, abs=0.01)
    assert retention(img, rng.integers(0, 255, (16, 16)).astype(np.uint8), "image", {}) < 0.2


def _exact_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two 8-bit arrays from Python-integer sums, floored at 0 (0 when either is flat)."""
    x, y = a.astype(np.int64).ravel(), b.astype(np.int64).ravel()
    n, sx, sy = x.size, int(x.sum()), int(y.sum())
    spread = (n * int(x @ x) - sx * sx) * (n * int(y @ y) - sy * sy)
    return 0.0 if spread == 0 else max((n * int(x @ y) - sx * sy) / math.sqrt(spread), 0.0)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 5000).flatmap(lambda n: st.tuples(arrays(np.uint8, n), arrays(np.int16, n))))
def test_retention_of_8_bit_images_is_their_correlation_from_exact_sums(pair):
    a, change = pair
    b = np.clip(a + change // 256, 0, 255).astype(np.uint8)  # a perturbed copy: correlations across [0, 1]
    assert retention(a, b, "image", {}) == _exact_correlation(a, b)


@pytest.mark.parametrize("size", [4095, 65537, 2**23 + 5])
def test_retention_of_8_bit_images_is_exact_for_extreme_values_past_opencvs_blocks(size):
    rng = np.random.default_rng(size)
    a = rng.choice(np.array([0, 255], np.uint8), size)
    b = np.where(rng.random(size) < 0.9, a, 255 - a).astype(np.uint8)
    assert retention(a, b, "image", {}) == _exact_correlation(a, b)


def test_retention_of_an_8_bit_image_and_a_float_one_is_their_float_correlation():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (20, 30)).astype(np.uint8)
    b = np.clip(a + rng.normal(0, 40, a.shape), 0, 255).astype(np.float32)
    assert retention(a, b, "image", {}) == pytest.approx(np.corrcoef(a.ravel(), b.ravel())[0, 1], abs=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.uint8])
def test_retention_of_a_sample_with_itself_is_never_above_one(dtype):
    rng = np.random.default_rng(2)
    # a float sample's correlation with itself rounds past 1 about a quarter of the time unless clipped
    samples = [rng.normal(0, 1, 100) if dtype == np.float64 else rng.integers(0, 256, 97) for _ in range(40)]
    kept = np.array([retention(x.astype(dtype), x.astype(dtype), "image", {}) for x in samples])
    assert kept.max() == 1.0 and kept.min() > 1 - 1e-15


def test_retention_of_a_flat_image_is_zero():
    flat = np.full((8, 8), 7, np.uint8)
    assert retention(flat, np.arange(64, dtype=np.uint8).reshape(8, 8), "image", {}) == 0.0


def _scores(**kw):
    row = {"realism": 0.5, "least_typical": "mean", "clarity": 0.9, "weakness": 0.5} | kw
    return pd.DataFrame([row])


def test_unrealistic_candidate_is_rejected_naming_the_statistic():
    out = verdicts(_scores(realism=0.01), THRESHOLDS)
    assert out["verdict"][0] == "reject" and "mean outside the real data" in out["reason"][0]


def test_unclear_candidate_is_rejected():
    out = verdicts(_scores(clarity=0.2), THRESHOLDS)
    assert out["verdict"][0] == "reject" and "no longer clear" in out["reason"][0]


def test_candidate_the_model_already_knows_is_easy():
    assert verdicts(_scores(weakness=0.01), THRESHOLDS)["verdict"][0] == "easy"


def test_ambiguous_candidate_goes_to_review():
    assert verdicts(_scores(clarity=0.45), THRESHOLDS)["verdict"][0] == "review"


def test_realistic_clear_hard_candidate_is_accepted():
    assert verdicts(_scores(), THRESHOLDS)["verdict"][0] == "accept"
