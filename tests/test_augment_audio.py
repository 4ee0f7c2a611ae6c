"""augment.noise, augment.audio and the audio side of augment.pipeline: seeds, replay, records, errors."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from augment.audio import (
    AUDIBLE_BLOCK,
    AUDIBLE_RATIO,
    CLIPPING_STEP,
    BackgroundNoise,
    Gain,
    Telephone,
    _every_window_audible,
)
from augment.noise import NoiseClip, NoisePool
from augment.pipeline import build_pipeline

SR = 8000
PARAMS = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())


def speechlike(seed: int = 0, n: int = SR) -> np.ndarray:
    """A few harmonics under a syllable-like envelope, with a little noise."""
    t = np.arange(n) / SR
    rng = np.random.default_rng(seed)
    voiced = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((180, 360, 720, 1440), start=1))
    envelope = np.sin(np.pi * t * SR / n) ** 2
    return (0.3 * envelope * voiced + 0.01 * rng.normal(size=n)).astype(np.float32)


def make_pool() -> NoisePool:
    rng = np.random.default_rng(11)
    return NoisePool(
        [
            NoiseClip("car-b", "car", rng.normal(0, 0.2, 3000).astype(np.float32), SR),
            NoiseClip("car-a", "car", rng.normal(0, 0.1, 12000).astype(np.float32), SR),
            NoiseClip("babble-a", "babble", rng.normal(0, 0.3, 5000).astype(np.float32), SR),
        ]
    )


@pytest.fixture(scope="module")
def pool() -> NoisePool:
    return make_pool()


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return speechlike()


POLICY = [
    {"name": "BackgroundNoise", "groups": ["car"], "min_snr_db": -3, "max_snr_db": 12, "p": 0.8},
    {"name": "Gain", "min_gain_db": -6, "max_gain_db": 6, "p": 0.5},
    {"name": "Telephone", "p": 0.5},
]


# --- noise pool -------------------------------------------------------------------------------------------


def test_pool_groups_and_selection(pool):
    assert len(pool) == 3
    assert pool.groups() == ["babble", "car"]
    assert [c.id for c in pool.select(["car"])] == ["car-a", "car-b"]  # sorted, whatever the loading order
    assert {c.id for c in pool.select(["car", "babble"])} == {"car-a", "car-b", "babble-a"}


def test_pool_names_a_missing_group_and_the_available_ones(pool):
    with pytest.raises(ValueError, match=r"'street'.*available groups: babble, car"):
        pool.select(["car", "street"])
    with pytest.raises(ValueError, match="list of group names"):
        pool.select("car")


@pytest.mark.parametrize(
    ("clips", "reason"),
    [
        ([], "at least one clip"),
        ([("a", "car", 0.1, SR), ("a", "car", 0.1, SR)], "unique, repeated: a"),
        ([("a", "car", 0.1, SR), ("b", "car", 0.1, 16000)], "one sample rate"),
    ],
)
def test_pool_rejects_inconsistent_clips(clips, reason):
    with pytest.raises(ValueError, match=reason):
        NoisePool(NoiseClip(i, g, np.full(10, level, np.float32), rate) for i, g, level, rate in clips)


@pytest.mark.parametrize(
    ("samples", "reason"),
    [
        (np.zeros(10, np.float32), "silent"),
        (np.ones((2, 5), np.float32), "1-D float"),
        (np.ones(10, np.int16), "1-D float"),
        (np.array([0.1, np.nan], np.float32), "NaN"),
    ],
)
def test_noise_clip_rejects_unusable_audio(samples, reason):
    with pytest.raises(ValueError, match=reason):
        NoiseClip("x", "car", samples, SR)


def test_noise_clip_keeps_a_read_only_float32_copy():
    source = np.full(10, 0.5)
    noise = NoiseClip("x", "car", source, SR)
    source[:] = 0
    assert noise.samples.dtype == np.float32 and noise.samples[0] == 0.5
    assert not noise.samples.flags.writeable


def test_noise_clip_cumulative_energy_wraps_and_extends_without_changing_its_prefix():
    noise = NoiseClip("x", "car", np.array([0.5, -1.0, 0.25], np.float32), SR)
    short = noise.cumulative_energy(4).copy()
    np.testing.assert_array_equal(short, [0.0, 0.25, 1.25, 1.3125, 1.5625, 2.5625, 2.625])  # two periods at least
    longer = noise.cumulative_energy(10)
    assert longer.size == 11
    assert longer[10] - longer[9] == 0.25  # sample 9 is sample 0 (0.5) of the fourth period
    np.testing.assert_array_equal(longer[: short.size], short)
    assert noise.cumulative_energy(5) is longer  # served from the kept array


@settings(max_examples=60, deadline=None)
@given(
    samples=st.lists(st.floats(-1, 1, width=32), min_size=1, max_size=40).filter(any),
    length=st.integers(1, 200),
)
def test_noise_clip_cumulative_energy_is_the_running_sum_of_squares_of_the_repeated_clip(samples, length):
    x = np.array(samples, np.float32)
    expected = np.concatenate([[0.0], np.cumsum(np.resize(x.astype(np.float64), max(length, 2 * x.size)) ** 2)])
    np.testing.assert_array_equal(NoiseClip("x", "car", x, SR).cumulative_energy(length), expected)  # same bits


# --- pipeline: determinism, replay, records ---------------------------------------------------------------


def test_same_seed_same_bytes_and_different_seed_different_output(pool, clip):
    pipeline = build_pipeline("audio", POLICY, sample_rate=SR, noise=pool)
    first, records = pipeline(clip, 1234)
    again, records_again = build_pipeline("audio", POLICY, sample_rate=SR, noise=make_pool())(clip, 1234)
    assert first.tobytes() == again.tobytes() and records == records_again
    assert first.tobytes() != pipeline(clip, 1235)[0].tobytes()


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5, 6, 7])
def test_replay_is_bit_identical(pool, clip, seed):
    pipeline = build_pipeline("audio", POLICY, sample_rate=SR, noise=pool)
    out, records = pipeline(clip, seed)
    assert pipeline.replay(clip, json.loads(json.dumps(records))).tobytes() == out.tobytes()


def test_records_are_json_and_describe_each_transform(pool, clip):
    pipeline = build_pipeline("audio", POLICY, sample_rate=SR, noise=pool)
    applied = [pipeline(clip, seed)[1] for seed in range(40)]
    assert all(json.loads(json.dumps(records)) == records for records in applied)
    assert all([r["name"] for r in records] == [*(e["name"] for e in POLICY), CLIPPING_STEP] for records in applied)
    noise_params = [records[0]["params"] for records in applied if records[0]["params"]["applied"]]
    assert {p["clip_id"] for p in noise_params} == {"car-a", "car-b"}
    assert all(-3 <= p["snr_db"] <= 12 for p in noise_params)
    gains = [records[1]["params"] for records in applied]
    assert {g["applied"] for g in gains} == {True, False}  # p=0.5 decided per seed
    assert all(set(g) == {"applied"} for g in gains if not g["applied"])


def test_output_is_float32_of_the_input_length_and_never_clips(pool):
    loud = build_pipeline("audio", [{"name": "Gain", "min_gain_db": 20, "max_gain_db": 20}], sample_rate=SR)
    x = speechlike().astype(np.float64)  # float64 input is accepted, float32 comes out
    out, records = loud(x, 5)
    assert out.dtype == np.float32 and out.shape == x.shape
    assert np.max(np.abs(out)) <= 0.99 + 1e-6
    assert records[-1]["name"] == CLIPPING_STEP and records[-1]["params"]["scale"] < 1.0


def test_background_noise_condition_is_mixed_at_exactly_its_snr(pool, clip):
    condition = [{"name": "BackgroundNoise", "groups": ["car"], "min_snr_db": 5, "max_snr_db": 5}]
    out, records = build_pipeline("audio", condition, sample_rate=SR, noise=pool)(clip, 99)
    assert records[0]["params"]["snr_db"] == 5.0
    added = out.astype(np.float64) / records[-1]["params"]["scale"] - clip
    measured = 10 * math.log10(np.mean(clip.astype(np.float64) ** 2) / np.mean(added**2))
    assert measured == pytest.approx(5.0, abs=1e-3)


def test_telephone_output_has_mu_law_levels(clip):
    out, records = build_pipeline("audio", [{"name": "Telephone"}], sample_rate=SR)(clip, 0)
    assert records[-1]["params"]["scale"] == 1.0
    assert len(np.unique(out)) <= 256


def test_probability_zero_leaves_the_clip_untouched(clip):
    pipeline = build_pipeline("audio", [{"name": "Gain", "min_gain_db": 3, "max_gain_db": 6, "p": 0}], sample_rate=SR)
    out, records = pipeline(clip, 8)
    assert records[0]["params"] == {"applied": False}
    assert out.tobytes() == clip.tobytes()


def test_each_transform_draws_from_its_own_stream(clip):
    """Whether (and how much) one transform draws does not shift what the next one draws."""
    gain = {"name": "Gain", "min_gain_db": -6, "max_gain_db": 6}
    skipped = {"name": "Gain", "min_gain_db": 0, "max_gain_db": 1, "p": 0.0}
    applied = {"name": "Gain", "min_gain_db": 0, "max_gain_db": 1, "p": 1.0}
    after_skipped = build_pipeline("audio", [skipped, gain], sample_rate=SR)(clip, 3)[1]
    after_applied = build_pipeline("audio", [applied, gain], sample_rate=SR)(clip, 3)[1]
    assert after_skipped[1]["params"] == after_applied[1]["params"]


def test_to_dict_rebuilds_the_same_pipeline(pool, clip):
    pipeline = build_pipeline("audio", POLICY, sample_rate=SR, noise=pool)
    spec = pipeline.to_dict()
    assert spec[0] == {
        "name": "BackgroundNoise",
        "groups": ["car"],
        "min_snr_db": -3.0,
        "max_snr_db": 12.0,
        "p": 0.8,
    }
    assert Telephone().to_dict() == {
        "name": "Telephone",
        "low_hz": 300.0,
        "high_hz": 3400.0,
        "mu_law_bits": 8,
        "p": 1.0,
    }
    rebuilt = build_pipeline("audio", json.loads(json.dumps(spec)), sample_rate=SR, noise=pool)
    assert rebuilt(clip, 77)[0].tobytes() == pipeline(clip, 77)[0].tobytes()


def test_every_audio_condition_and_policy_in_params_runs(pool, clip):
    datasets = [d for d in PARAMS["datasets"].values() if d["modality"] == "audio"]
    specs = [spec for d in datasets for spec in (*d["conditions"].values(), *d["augment"]["policies"].values())]
    assert specs
    for spec in specs:
        pipeline = build_pipeline("audio", spec, sample_rate=SR, noise=pool)
        out, records = pipeline(clip, 2026)
        assert out.shape == clip.shape and out.dtype == np.float32
        assert pipeline.replay(clip, records).tobytes() == out.tobytes()


def test_sample_params_uses_only_the_given_generator(clip):
    gain = Gain(min_gain_db=-6, max_gain_db=6)
    drawn = [gain.sample_params(np.random.default_rng(5), clip, SR) for _ in range(2)]
    assert drawn[0] == drawn[1] and drawn[0]["applied"]
    assert gain.apply(clip, SR, drawn[0]).tobytes() == gain.apply(clip, SR, drawn[1]).tobytes()


# --- audiomentations-backed transforms (signalsmith: no numba), module-scoped ------------------------------


@pytest.fixture(scope="module")
def stretched(clip):
    spec = [
        {"name": "PitchShift", "min_semitones": -3, "max_semitones": 3},
        {"name": "TimeStretch", "min_rate": 0.8, "max_rate": 1.25},
    ]
    pipeline = build_pipeline("audio", spec, sample_rate=SR)
    global_state = random.getstate(), np.random.get_state()
    runs = {seed: pipeline(clip, seed) for seed in (10, 10, 11)}
    touched = (random.getstate(), np.random.get_state())
    return pipeline, runs, global_state, touched


def test_pitch_shift_and_time_stretch_are_seeded_replayable_and_keep_length(stretched, clip):
    pipeline, runs, (py_before, np_before), (py_after, np_after) = stretched
    out, records = runs[10]
    assert out.shape == clip.shape and out.dtype == np.float32
    assert -3 <= records[0]["params"]["num_semitones"] <= 3 and 0.8 <= records[1]["params"]["rate"] <= 1.25
    assert pipeline(clip, 10)[0].tobytes() == out.tobytes()
    assert runs[11][0].tobytes() != out.tobytes()
    assert pipeline.replay(clip, records).tobytes() == out.tobytes()
    assert py_before == py_after  # audiomentations' own draws (global `random`) never happen
    assert all(np.array_equal(a, b) for a, b in zip(np_before, np_after, strict=True))


# --- property: any seed ------------------------------------------------------------------------------------

PROPERTY_PIPELINE = build_pipeline("audio", POLICY, sample_rate=SR, noise=make_pool())
PROPERTY_CLIP = speechlike(seed=4, n=2000)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(min_value=-(2**63), max_value=2**64))
def test_any_seed_keeps_shape_and_dtype(seed):
    out, records = PROPERTY_PIPELINE(PROPERTY_CLIP, seed)
    assert out.shape == PROPERTY_CLIP.shape and out.dtype == np.float32
    assert np.all(np.isfinite(out)) and np.max(np.abs(out)) <= 1.0
    assert len(records) == len(POLICY) + 1


# --- errors -------------------------------------------------------------------------------------------------


NO_POOL = "no pool"


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ([{"name": "Foo"}], r"unknown audio transform 'Foo'; known: BackgroundNoise, Telephone, Gain"),
        (
            [{"name": "BackgroundNoise", "groups": ["car"], "min_snr_db": 0, "max_snr_db": 5, NO_POOL: True}],
            "BackgroundNoise needs a noise pool",
        ),
        (
            [{"name": "BackgroundNoise", "groups": ["street"], "min_snr_db": 0, "max_snr_db": 5}],
            r"BackgroundNoise: no noise clips in group\(s\) 'street'; available groups: babble, car",
        ),
        ([{"name": "Gain", "min_gain_db": 6, "max_gain_db": -6}], r"Gain: min_gain_db \(6\) must not exceed"),
        (
            [{"name": "Gain", "min_gain_db": 0, "max_gain_db": 1, "gain": 3}],
            "Gain: .*unexpected keyword.*'gain'",
        ),
        ([{"name": "Gain", "min_gain_db": 0}], "Gain: missing a required argument: 'max_gain_db'"),
        ([{"name": "Gain", "min_gain_db": "loud", "max_gain_db": 1}], "Gain: min_gain_db must be a number"),
        ([{"name": "Gain", "min_gain_db": 0, "max_gain_db": 1, "p": 1.5}], r"Gain: p must be in \[0, 1\]"),
        ([{"name": "Telephone", "mu_law_bits": 1}], "Telephone: mu_law_bits must be an integer"),
        (
            [{"name": "PitchShift", "min_semitones": -30, "max_semitones": 0}],
            "PitchShift: min_semitones must be",
        ),
        ([{"min_gain_db": 0}], "spec entry 0 must be a mapping with a string 'name'"),
        ({"name": "Gain"}, "a pipeline spec must be a list"),
    ],
)
def test_bad_specs_raise_value_errors_that_say_why(pool, spec, reason):
    without_pool = isinstance(spec, list) and any(entry.pop(NO_POOL, False) for entry in spec)
    with pytest.raises(ValueError, match=reason):
        build_pipeline("audio", spec, sample_rate=SR, noise=None if without_pool else pool)


def test_builder_checks_modality_and_sample_rate():
    with pytest.raises(ValueError, match="unknown modality 'video'; known: audio, image"):
        build_pipeline("video", [])
    with pytest.raises(ValueError, match="audio pipelines need a sample_rate"):
        build_pipeline("audio", [])
    with pytest.raises(ValueError, match="sample_rate must be a positive int"):
        build_pipeline("audio", [], sample_rate=0)


def test_bad_input_and_foreign_records_are_rejected(pool, clip):
    pipeline = build_pipeline("audio", POLICY, sample_rate=SR, noise=pool)
    with pytest.raises(ValueError, match="1-D array"):
        pipeline(np.stack([clip, clip]), 0)
    with pytest.raises(ValueError, match="floating point"):
        pipeline((clip * 1000).astype(np.int16), 0)
    with pytest.raises(TypeError):
        pipeline(clip, 1.5)
    _, records = pipeline(clip, 0)
    with pytest.raises(ValueError, match="do not belong to this pipeline"):
        pipeline.replay(clip, records[1:])
    with pytest.raises(ValueError, match="mapping with 'name' and 'params'"):
        pipeline.replay(clip, ["BackgroundNoise", "Gain", "Telephone", CLIPPING_STEP])
    at_16k = [{"name": "BackgroundNoise", "groups": ["car"], "min_snr_db": 0, "max_snr_db": 0}]
    with pytest.raises(ValueError, match="noise is at 8000 Hz, the audio at 16000 Hz"):
        build_pipeline("audio", at_16k, sample_rate=16000, noise=pool)(clip, 0)


def test_apply_rejects_parameters_it_cannot_use(clip):
    with pytest.raises(ValueError, match="Gain: parameters lack gain_db"):
        Gain(min_gain_db=0, max_gain_db=1).apply(clip, SR, {"applied": True})


def test_background_noise_skips_silent_stretches_of_a_sparse_recording():
    sr = 8000
    knock = np.zeros(5 * sr, dtype=np.float32)
    knock[2 * sr : 2 * sr + 800] = 0.5  # one short event in five seconds of digital silence
    pool = NoisePool([NoiseClip(id="door", group="human", samples=knock, sample_rate=sr)])
    pipeline = build_pipeline(
        "audio",
        [{"name": "BackgroundNoise", "groups": ["human"], "min_snr_db": 5, "max_snr_db": 5}],
        sample_rate=sr,
        noise=pool,
    )
    speech = np.sin(np.linspace(0, 400, sr)).astype(np.float32) * 0.3
    for seed in range(20):
        out, _ = pipeline(speech, seed)
        assert not np.array_equal(out, speech), seed


def _scanned_offset(clip: NoiseClip, n: int, seed: int) -> int:
    """The audible offset as a scan of every window draws it: the definition the shortcut must keep."""
    size = clip.samples.size
    energy = clip.cumulative_energy(size + n)
    window = energy[n : n + size] - energy[:size]
    offsets = np.flatnonzero(window >= window.max() * AUDIBLE_RATIO)
    return int(offsets[int(np.random.default_rng(seed).integers(offsets.size))])


def _drawn_offset(clip: NoiseClip, n: int, seed: int) -> int:
    transform = BackgroundNoise(NoisePool([clip]), [clip.group], 0, 0)
    return transform._audible_offset(np.random.default_rng(seed), clip, n)


def test_steady_noise_skips_the_offset_scan_and_a_sparse_recording_does_not():
    steady = NoiseClip("rain", "weather", np.random.default_rng(0).normal(0, 0.1, 4000).astype(np.float32), SR)
    knock = np.zeros(4000, dtype=np.float32)
    knock[1000:1100] = 0.5
    sparse = NoiseClip("door", "human", knock, SR)
    n = 1000
    assert _every_window_audible(steady.cumulative_energy(4000 + n + 2 * AUDIBLE_BLOCK), 4000, n)
    assert not _every_window_audible(sparse.cumulative_energy(4000 + n + 2 * AUDIBLE_BLOCK), 4000, n)
    assert not _every_window_audible(steady.cumulative_energy(4000 + 300 + 2 * AUDIBLE_BLOCK), 4000, 300)  # < 2 blocks
    with pytest.raises(ValueError, match="needs 5513 energy entries"):
        _every_window_audible(steady.cumulative_energy(4000)[:5000], 4000, n)


@settings(max_examples=80, deadline=None)
@given(
    levels=st.lists(st.sampled_from([0.0, 1e-3, 0.05, 0.3, 1.0]), min_size=1, max_size=12).filter(any),
    stretch=st.integers(50, 700),
    n=st.integers(1, 6000),
    seed=st.integers(0, 2**32 - 1),
)
def test_audible_offset_draws_what_a_scan_of_every_window_draws(levels, stretch, n, seed):
    """Noise whose level changes stretch by stretch (steady, sparse, or between), any clip length: the block
    bound only ever skips a scan that would have listed every offset, so the draw is the same."""
    envelope = np.repeat(np.array(levels, np.float32), stretch)
    samples = envelope * np.random.default_rng(seed).uniform(-1, 1, envelope.size).astype(np.float32)
    clip = NoiseClip("x", "weather", samples, SR)
    size = clip.samples.size
    energy = clip.cumulative_energy(size + n + 2 * AUDIBLE_BLOCK)
    if _every_window_audible(energy, size, n):
        window = energy[n : n + size] - energy[:size]
        assert (window >= window.max() * AUDIBLE_RATIO).all()
    assert _drawn_offset(clip, n, seed) == _scanned_offset(clip, n, seed)


def test_replaying_an_offset_where_the_noise_is_silent_names_the_clip_and_offset():
    knock = np.zeros(4000, dtype=np.float32)
    knock[3000:3100] = 0.5
    transform = BackgroundNoise(NoisePool([NoiseClip("door", "human", knock, SR)]), ["human"], 0, 0)
    params = {"applied": True, "clip_id": "door", "offset": 10, "snr_db": 0.0}
    with pytest.raises(ValueError, match="BackgroundNoise with noise clip 'door' from offset 10: noise is silent"):
        transform.apply(speechlike(n=1000), SR, params)
