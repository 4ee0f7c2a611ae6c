"""The demo data generators: real digits as PNG, synthesized spoken digits and background noise."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from PIL import Image

from curation.sources import speech
from curation.sources.digits import write_digits

SEED = 20261123


def _files(root: Path) -> dict[str, bytes]:
    """Every file under `root` by relative path, with its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_digits_are_the_1797_real_images_as_png(tmp_path: Path) -> None:
    meta_path = write_digits(tmp_path / "a", size=32)
    meta = pd.read_csv(meta_path, dtype=str)
    assert list(meta.columns) == ["path", "label", "index"]
    assert len(meta) == 1797
    assert sorted(meta["label"].unique()) == [str(d) for d in range(10)]
    assert meta["index"].astype(int).tolist() == list(range(1797))
    for rel in meta["path"].iloc[::300]:
        with Image.open(meta_path.parent / rel) as img:
            assert img.format == "PNG" and img.mode == "L" and img.size == (32, 32)
            assert np.asarray(img).max() > 128  # strokes reach the bright end of 0..255
    write_digits(tmp_path / "b", size=32)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")


@pytest.fixture(scope="module")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The spoken digits written twice with the same seed, one take per voice and digit."""
    pytest.importorskip("espeakng_loader")
    root = tmp_path_factory.mktemp("spoken")
    return (
        speech.write_spoken_digits(root / "a", SEED, takes_per_voice=1),
        speech.write_spoken_digits(root / "b", SEED, takes_per_voice=1),
    )


def test_spoken_digits_cover_every_digit_and_voice(spoken: tuple[Path, Path]) -> None:
    meta = pd.read_csv(spoken[0], dtype=str)
    assert list(meta.columns) == ["path", "label", "speaker", "take", "rate", "pitch"]
    assert len(meta) == 10 * len(speech.DIGIT_VOICES)
    assert meta["speaker"].nunique() >= 10
    assert (meta.groupby("label").size() == meta["speaker"].nunique()).all()
    assert sorted(meta["label"].unique()) == [str(d) for d in range(10)]


def test_spoken_digits_are_8khz_mono_speech(spoken: tuple[Path, Path]) -> None:
    meta = pd.read_csv(spoken[0], dtype=str)
    for rel in meta["path"]:
        x, sr = sf.read(spoken[0].parent / rel, always_2d=True)
        assert sr == 8000 and x.shape[1] == 1
        assert 0.1 < len(x) / sr < 1.0, rel
        assert np.abs(x).max() > 0.4, rel  # normalized to a peak of -6..-1 dBFS
        assert np.sqrt(np.mean(x**2)) > 0.02, rel


def test_spoken_digits_are_byte_identical_for_a_seed(spoken: tuple[Path, Path]) -> None:
    assert _files(spoken[0].parent) == _files(spoken[1].parent)


def test_speech_needs_the_demo_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)  # import now raises ImportError
    with pytest.raises(ImportError, match=re.escape("pip install '.[demo]'")):
        speech.write_spoken_digits(tmp_path, SEED, takes_per_voice=1)


def test_noise_has_both_groups_in_both_pools(tmp_path: Path) -> None:
    pytest.importorskip("espeakng_loader")
    meta_path = speech.write_noise(tmp_path, SEED, clips_per_group=2)
    meta = pd.read_csv(meta_path, dtype=str)
    assert list(meta.columns) == ["path", "group", "pool"]
    assert meta.groupby(["group", "pool"]).size().to_dict() == {
        ("babble", "augment"): 2,
        ("babble", "test"): 2,
        ("car", "augment"): 2,
        ("car", "test"): 2,
    }
    for rel in meta["path"]:
        x, sr = sf.read(tmp_path / rel, always_2d=True)
        assert sr == 8000 and x.shape == (24000, 1)
        assert np.sqrt(np.mean(x**2)) > 0.02, rel


def test_car_noise_is_low_frequency_heavy() -> None:
    rng = np.random.default_rng(0)
    x = speech._car_noise(rng, 24000, 8000)
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / 8000)
    assert power[freqs < 500].sum() > 0.8 * power.sum()


def test_babble_pools_share_no_voice_and_no_sentence() -> None:
    used = {
        pool: {t.utterance.voice for i in range(12) for t in speech._babble_plan(SEED, pool, i)[0]}
        for pool in speech.NOISE_POOLS
    }
    assert used["augment"].isdisjoint(used["test"])
    assert set(speech.BABBLE_VOICES["augment"]).isdisjoint(speech.BABBLE_VOICES["test"])
    assert set(speech.BABBLE_SENTENCES["augment"]).isdisjoint(speech.BABBLE_SENTENCES["test"])
    for pool in speech.NOISE_POOLS:
        talkers = [len(speech._babble_plan(SEED, pool, i)[0]) for i in range(12)]
        assert min(talkers) >= 4 and max(talkers) <= 6


def test_babble_sentences_say_no_digit() -> None:
    sounds_like_digit = {"oh", "to", "too", "for", "fore", "won", "ate", "nein"}
    for sentence in (s for pool in speech.BABBLE_SENTENCES.values() for s in pool):
        words = sentence.lower().split()
        assert not sounds_like_digit.intersection(words), sentence
        assert not any(digit in sentence for digit in speech.DIGIT_WORDS), sentence
