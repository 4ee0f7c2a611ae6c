"""Duplicate checks: fingerprints (pHash, audio), the banded near-pair search, exact / near duplicates,
leakage across a given split, and the duplicate clusters the split stage uses."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from scipy.linalg import hadamard
from scipy.signal import resample_poly

from curation.checks.duplicates import (
    ExactDuplicate,
    Leakage,
    NearDuplicate,
    audio_fingerprint,
    duplicate_groups,
    hamming,
    image_fingerprint,
    near_pairs,
)
from curation.checks.findings import REGISTRY, Context, ReadinessError, build_checks

SEEDS = st.integers(0, 2**32 - 1)
IMAGE = Context("image", {}, split_column="split")
ZERO = "0" * 16


def _image(seed: int) -> np.ndarray:
    """A 96x128 grey picture with smooth structure and fine noise, kept within 30..225 (no clipping)."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.uniform(40, 215, (6, 8)).astype(np.uint8))
    smooth = np.asarray(coarse.resize((128, 96), Image.Resampling.BICUBIC), dtype=np.float64)
    return np.clip(smooth + rng.normal(0, 4, smooth.shape), 30, 225).astype(np.uint8)


def _jpeg(grey: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(grey).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer))


def _clip(seed: int, rate: int = 8000) -> np.ndarray:
    """A word-like clip: four gliding tones under random envelopes, with silence before and after."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * rng.uniform(0.3, 0.6))) / rate
    voiced = np.zeros_like(t)
    for _ in range(4):
        envelope = np.interp(t, np.linspace(0, t[-1], 6), rng.uniform(0, 1, 6))
        voiced += envelope * np.sin(2 * np.pi * (rng.uniform(150, 3000) * t + rng.uniform(-200, 200) * t * t))
    sound = 0.3 * voiced * np.hanning(len(t))
    return np.concatenate([np.zeros(rate // 10), sound, np.zeros(rate // 20)]).astype(np.float32)


def _table(**columns: list) -> pd.DataFrame:
    """A probe table: ids a, b, c..., paths <id>.png, measured (sha256 set, no decode error) unless given."""
    n = len(next(iter(columns.values())))
    ids = [chr(ord("a") + i) for i in range(n)]
    base = {
        "id": ids,
        "path": [f"{i}.png" for i in ids],
        "sha256": [f"s-{i}" for i in ids],
        "decode_error": [""] * n,
        "content_hash": [f"c-{i}" for i in ids],
        "fingerprint": [f"{i:016x}" for i in range(n)],  # distinct but close: set per test when it matters
    }
    return pd.DataFrame(base | columns)


def _far(n: int) -> list[str]:
    """n fingerprints (rows of a Hadamard matrix) pairwise 32 bits apart, and 32 or 64 from zero."""
    return [np.packbits(row > 0).tobytes().hex() for row in hadamard(64)[:n]]


# fingerprints


@settings(max_examples=30, deadline=None)
@given(SEEDS)
def test_image_fingerprint_is_deterministic_hex64(seed: int) -> None:
    grey = _image(seed)
    first = image_fingerprint(grey)
    assert first == image_fingerprint(grey.copy())
    assert len(first) == 16 and int(first, 16) >= 0


@settings(max_examples=30, deadline=None)
@given(SEEDS)
def test_image_fingerprint_survives_jpeg_and_brightness_but_not_another_picture(seed: int) -> None:
    grey = _image(seed)
    own = image_fingerprint(grey)
    assert hamming(own, image_fingerprint(_jpeg(grey, 85))) <= 4
    assert hamming(own, image_fingerprint(grey + np.uint8(12))) <= 2
    assert hamming(own, image_fingerprint(_image(seed ^ 0x5A5A5A5A))) >= 10


def test_image_fingerprint_of_a_flat_image_is_zero_and_input_is_checked() -> None:
    assert image_fingerprint(np.full((1, 1), 7, np.uint8)) == ZERO
    assert image_fingerprint(np.full((50, 70), 200, np.uint8)) == ZERO
    with pytest.raises(ValueError, match="2-D uint8"):
        image_fingerprint(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="2-D uint8"):
        image_fingerprint(np.zeros((4, 4), np.float32))


def test_image_fingerprint_bits_are_balanced() -> None:
    # bit = coefficient > median of 64 distinct coefficients: 32 ones, so image distances are even
    bits = bin(int(image_fingerprint(_image(3)), 16)).count("1")
    assert bits == 32


@settings(max_examples=25, deadline=None)
@given(SEEDS)
def test_audio_fingerprint_is_deterministic_and_gain_free(seed: int) -> None:
    clip = _clip(seed)
    own = audio_fingerprint(clip, 8000)
    assert own == audio_fingerprint(clip.copy(), 8000) and len(own) == 16
    assert hamming(own, audio_fingerprint(clip * np.float32(0.25), 8000)) <= 1


@settings(max_examples=25, deadline=None)
@given(SEEDS)
def test_audio_fingerprint_survives_resampling_padding_and_noise(seed: int) -> None:
    clip = _clip(seed)
    own = audio_fingerprint(clip, 8000)
    assert hamming(own, audio_fingerprint(resample_poly(clip, 2, 1).astype(np.float32), 16000)) <= 4
    assert hamming(own, audio_fingerprint(np.pad(clip, (800, 1600)), 8000)) == 0  # whole hops of silence
    rms = float(np.sqrt(np.mean(clip.astype(np.float64) ** 2)))
    noisy = clip + np.random.default_rng(seed).normal(0, 0.01 * rms, len(clip)).astype(np.float32)  # 40 dB SNR
    assert hamming(own, audio_fingerprint(noisy, 8000)) <= 6


def test_audio_fingerprints_of_different_clips_lie_far_apart() -> None:
    # A fixed sample of pairs, not a property: random search finds rare synthetic pairs closer than this
    # (seed 3196 and its partner differ in 5 bits, both fingerprints nearly all zeros), so the separation of
    # different clips is a rate, measured here on 300 pairs: every pair at least 8 bits apart, median 28.
    distances = [
        hamming(audio_fingerprint(_clip(s), 8000), audio_fingerprint(_clip(s ^ 0x5A5A5A5A), 8000)) for s in range(300)
    ]
    assert min(distances) >= 8 and float(np.median(distances)) == 28.0


def test_audio_fingerprint_of_silence_or_a_tiny_rate_is_zero() -> None:
    assert audio_fingerprint(np.zeros(4000, np.float32), 8000) == ZERO
    assert audio_fingerprint(np.zeros(1, np.float32), 8000) == ZERO
    assert audio_fingerprint(np.ones(100, np.float32), 150) == ZERO
    assert audio_fingerprint(np.full(100, np.nan, np.float32), 8000) == ZERO


# the banded search


def test_hamming() -> None:
    assert hamming("00", "ff") == 8 and hamming("f0f0", "f0f1") == 1 and hamming(ZERO, ZERO) == 0
    with pytest.raises(ValueError, match="different lengths"):
        hamming("00", "000")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=4),
    st.lists(st.tuples(st.integers(0, 3), st.lists(st.integers(0, 63), max_size=8)), max_size=40),
    st.integers(0, 12),
)
def test_banded_search_finds_exactly_the_brute_force_pairs(bases: list[int], items: list, max_distance: int) -> None:
    values = []
    for base, flips in items:
        value = bases[base % len(bases)]
        for bit in flips:
            value ^= 1 << bit
        values.append(f"{value:016x}")
    brute = [
        (i, j, hamming(a, b))
        for (i, a), (j, b) in itertools.combinations(enumerate(values), 2)
        if hamming(a, b) <= max_distance
    ]
    assert near_pairs(values, max_distance) == brute


def test_banded_search_skips_empty_and_mixed_lengths_and_checks_the_distance() -> None:
    fingerprints = [ZERO, "", "0" * 32, "0000000000000001", None, "0" * 32]
    assert near_pairs(fingerprints, 1) == [(0, 3, 1), (2, 5, 0)]
    assert near_pairs(["00", "ff", "0f"], 8) == [(0, 1, 8), (0, 2, 4), (1, 2, 4)]  # at least the bit count
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="max_distance"):
            near_pairs([ZERO], bad)


# the checks


def test_checks_are_registered_for_both_modalities() -> None:
    for modality in ("image", "audio"):
        names = {c.name for c in build_checks(modality, None)}
        assert {"exact_duplicate", "near_duplicate", "leakage"} <= names
    assert REGISTRY["leakage"].severity == "error" and REGISTRY["exact_duplicate"].severity == "warning"


def test_exact_duplicate_by_bytes_or_decoded_content() -> None:
    table = _table(
        sha256=["s1", "s1", "s2", "s3", "s4", "s5", "s5"],
        content_hash=["c1", "c1", "c2", "c2", "c4", "c2", None],
        decode_error=["", "", "", "", "", "", "cannot decode image: truncated"],
        fingerprint=[*_far(6), None],
    )
    found = ExactDuplicate().find_issues(table, IMAGE)
    assert [(f.id, f.related, f.reason) for f in found] == [
        ("a", "b", "byte-identical to b.png"),
        ("b", "a", "byte-identical to a.png"),
        ("c", "d;f", "same pixels as d.png (identical decoded content) and 1 more"),
        ("d", "c;f", "same pixels as c.png (identical decoded content) and 1 more"),
        ("f", "c;d", "same pixels as c.png (identical decoded content) and 1 more"),
    ]  # g shares f's bytes but was not decoded: the decode check reports it
    assert {(f.check, f.severity, f.score) for f in found} == {("exact_duplicate", "warning", 0.0)}
    audio = ExactDuplicate().find_issues(table.iloc[2:4], Context("audio", {}))
    assert audio[0].reason == "same samples as d.png (identical decoded content)"


def test_near_duplicate_within_max_distance_and_not_exact() -> None:
    table = _table(
        sha256=["s1", "s1", "s2", "s3", "s4"],
        content_hash=["c1", "c1", "c2", "c3", "c4"],
        fingerprint=[ZERO, ZERO, "0000000000000007", "000000000000000f", "ffffffffffffffff"],
    )
    found = NearDuplicate().find_issues(table, IMAGE)  # default 3 bits
    assert [(f.id, f.related, f.reason, f.score) for f in found] == [
        ("a", "c", "looks like c.png (3 of 64 fingerprint bits differ)", 0.75),
        ("b", "c", "looks like c.png (3 of 64 fingerprint bits differ)", 0.75),
        ("c", "d;a;b", "looks like d.png (1 of 64 fingerprint bits differ) and 2 more", 0.25),
        ("d", "c", "looks like c.png (1 of 64 fingerprint bits differ)", 0.25),
    ]  # a and b are exact copies, reported by exact_duplicate only
    strict = NearDuplicate(max_distance=1).find_issues(table, IMAGE)
    assert [(f.id, f.related) for f in strict] == [("c", "d"), ("d", "c")]


def test_distance_settings_are_checked() -> None:
    for bad in (-1, 2.5, True, "3"):
        with pytest.raises(ReadinessError, match="max_distance"):
            NearDuplicate(max_distance=bad)
    with pytest.raises(ReadinessError, match="order"):
        Leakage(order="train")
    assert Leakage(order=["a", "b"]).order == ("a", "b")


def test_leakage_reports_the_later_side_so_quarantine_removes_the_leak() -> None:
    table = _table(
        split=["train", "val", "dev", "test", "train", "train", "val", None],
        sha256=["s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"],
        content_hash=["c1", "c1", "c3", "c3", "c5", "c5", "c7", "c7"],
        fingerprint=_far(8),
    )
    found = Leakage().find_issues(table, IMAGE)
    assert [(f.id, f.related, f.reason) for f in found] == [
        ("b", "a", "same pixels as train sample a.png: leaks across val/train"),
        ("d", "c", "same pixels as dev sample c.png: leaks across test/dev"),
    ]  # e/f share train, h has no split: no leak
    assert {(f.check, f.severity) for f in found} == {("leakage", "error")}
    assert Leakage().find_issues(table, Context("image", {}, split_column=None)) == []


def test_leakage_reports_both_sides_outside_the_order_and_near_copies_by_setting() -> None:
    table = _table(
        split=["val", "label_book", "train", "val"],
        sha256=["s1", "s1", "s3", "s4"],
        fingerprint=[_far(2)[1], _far(2)[1], ZERO, "0000000000000003"],
    )
    found = Leakage().find_issues(table, IMAGE)
    assert [(f.id, f.related, f.reason) for f in found] == [
        ("a", "b", "byte-identical to label_book sample b.png: leaks across val/label_book"),
        ("b", "a", "byte-identical to val sample a.png: leaks across label_book/val"),
    ]  # c and d are 2 bits apart: not a leak at the default max_distance 0
    near = Leakage(max_distance=2).find_issues(table, IMAGE)
    assert (near[-1].id, near[-1].related, near[-1].reason) == (
        "d",
        "c",
        "looks like train sample c.png (2 of 64 bits differ): leaks across val/train",
    )
    custom = Leakage(order=["val", "train"], max_distance=2).find_issues(table, IMAGE)
    assert custom[-1].id == "c"


def test_leakage_needs_the_split_column_in_the_table() -> None:
    with pytest.raises(ReadinessError, match="split column 'fold'"):
        Leakage().find_issues(_table(fingerprint=_far(2)), Context("image", {}, split_column="fold"))


def test_duplicate_groups_join_exact_and_near_copies_transitively() -> None:
    table = _table(
        id=["m", "k", "z", "q", "x", "y"],
        sha256=["s1", "s2", "s3", "s4", "s5", None],
        content_hash=["c1", "c1", "c3", "c4", "c5", None],
        decode_error=["", "", "", "", "", "cannot read: missing"],
        fingerprint=["f" * 16, "0" * 16, "0000000000000003", "000000000000000f", "00000000ffffffff", None],
    ).set_index(pd.Index([10, 11, 12, 13, 14, 15]))
    groups = duplicate_groups(table, 2)
    # m=k (content), k~z (2 bits), z~q (2 bits): one cluster named after its smallest id, k
    assert groups.tolist() == ["dup-k", "dup-k", "dup-k", "dup-k", "x", "y"]
    assert groups.index.equals(table.index) and groups.name == "dup_group"
    assert duplicate_groups(table, 0).tolist() == ["dup-k", "dup-k", "z", "q", "x", "y"]
