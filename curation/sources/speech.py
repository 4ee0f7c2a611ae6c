"""The audio demo: spoken digits synthesized offline with eSpeak NG, and background noise made here.

eSpeak NG comes from the optional `espeakng-loader` wheel (GPL-3.0, `pip install '.[demo]'`) and is driven
through ctypes; nothing else in the project imports it. eSpeak keeps state from one utterance to the next
(an utterance said twice in a row comes out different) and seeds its noise generator from the clock. So each
call synthesizes all its utterances in one fresh child process, in a fixed order, with eSpeak's generator
seeded from a derived seed before every utterance: the same seed gives the same bytes, whatever ran before.
"""

from __future__ import annotations

import ctypes
import functools
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from math import gcd
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.signal import butter, resample_poly, sosfilt

from augment.rng import generator
from curation.io import write_text
from curation.media import save_audio

SPEECH_RATE = 22050  # eSpeak NG's output rate
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# language+variant; every variant is a file in espeak-ng-data/voices/!v
DIGIT_VOICES = (
    "en+m1", "en+m3", "en+f2", "en+f4", "en-us+m5",
    "en-gb-x-rp+f3", "en+klatt", "en+croak", "en-gb-scotland+m7", "en-us-nyc+f1",
)  # fmt: skip
# Babble talkers: other people than the digit speakers, and no voice shared between the two pools.
BABBLE_VOICES = {
    "augment": ("en+m2", "en+m4", "en+f5", "en-us+Andy", "en-gb-x-rp+adam", "en+Alicia",
                "en-029+m6", "en+klatt2"),
    "test": ("en+m8", "en+linda", "en-us+belinda", "en-gb-x-rp+david", "en+steph", "en+grandpa",
             "en-029+klatt3", "en+Lee"),
}  # fmt: skip
# No digit word, and no word that sounds like one ("to", "for", "ate", "oh", "won"), in any sentence.
BABBLE_SENTENCES = {
    "augment": (
        "the market was busy and the bread smelled warm",
        "please close the window when the rain starts",
        "she walked along the river with her old dog",
        "we should check the map again at dusk",
        "the kettle is boiling in the kitchen",
        "his brother plays the guitar every evening",
        "the library opens early on weekdays",
        "a cold wind blew across the empty station",
    ),
    "test": (
        "the teacher read a story about a brave little fox",
        "our neighbours painted their fence bright green",
        "the museum has a new hall of ancient pottery",
        "coffee and cake were served in the garden",
        "the bus was slow because of the snow",
        "my sister bought a blue umbrella yesterday",
        "the cat slept on the sofa all afternoon",
        "the pilot spoke calmly as the plane landed",
    ),
}
NOISE_POOLS = ("augment", "test")
NOISE_SECONDS = 3.0

# eSpeak NG API constants (speak_lib.h)
AUDIO_OUTPUT_SYNCHRONOUS = 2
ESPEAK_RATE, ESPEAK_PITCH, ESPEAK_RANGE = 1, 3, 4
POS_CHARACTER, ESPEAK_CHARS_AUTO = 1, 0
SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

TRIM_LEVEL = 0.02  # silence is below this share of the utterance's peak
TRIM_MARGIN_S = 0.02  # kept either side of the speech so that onsets are not clipped


class _Utterance(NamedTuple):
    """One text for eSpeak to say, with the voice settings and the seed of eSpeak's own noise source."""

    voice: str
    text: str
    rate: int  # words per minute
    pitch: int  # 0..100
    pitch_range: int  # 0..100
    noise_seed: int  # seeds eSpeak's own generator of breath and aspiration noise


class _Engine(NamedTuple):
    """An initialised eSpeak NG in this process: the library, its callback (kept alive) and the audio sink."""

    lib: ctypes.CDLL
    callback: Callable[..., int]
    chunks: list[np.ndarray]
    variants: Path


def _espeak_paths() -> tuple[str, str]:
    """The eSpeak NG library and data folder from the optional `espeakng-loader` wheel."""
    try:
        import espeakng_loader
    except ImportError as exc:
        raise ImportError(
            "the spoken-digits demo synthesizes speech with eSpeak NG, an optional dependency: pip install '.[demo]'"
        ) from exc
    return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()


@functools.cache
def _engine() -> _Engine:
    """Load and initialise eSpeak NG once per process, collecting synthesized int16 chunks in a list."""
    lib_path, data_path = _espeak_paths()
    lib = ctypes.CDLL(lib_path)
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    lib.espeak_Synth.argtypes = [
        ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
        ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
    ]  # fmt: skip
    rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), 0)
    if rate != SPEECH_RATE:
        raise RuntimeError(f"eSpeak NG failed to initialise from {data_path} (returned {rate})")
    chunks: list[np.ndarray] = []

    def collect(wav: ctypes._Pointer, n: int, _events: int | None) -> int:
        if n > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    callback = SYNTH_CALLBACK(collect)
    lib.espeak_SetSynthCallback(callback)
    return _Engine(lib, callback, chunks, Path(data_path) / "voices" / "!v")


def _speak(engine: _Engine, utt: _Utterance) -> np.ndarray:
    """Synthesize one utterance as int16 samples at SPEECH_RATE."""
    variant = utt.voice.partition("+")[2]
    if variant and not (engine.variants / variant).is_file():
        raise ValueError(f"eSpeak voice {utt.voice!r}: no variant {variant!r} in {engine.variants}")
    if engine.lib.espeak_SetVoiceByName(utt.voice.encode()) != 0:
        raise ValueError(f"eSpeak voice {utt.voice!r}: unknown language")
    for param, value in ((ESPEAK_RATE, utt.rate), (ESPEAK_PITCH, utt.pitch), (ESPEAK_RANGE, utt.pitch_range)):
        engine.lib.espeak_SetParameter(param, value, 0)
    engine.lib.espeak_ng_SetRandSeed(utt.noise_seed)
    engine.chunks.clear()
    text = utt.text.encode()
    status = engine.lib.espeak_Synth(text, len(text) + 1, 0, POS_CHARACTER, 0, ESPEAK_CHARS_AUTO, None, None)
    engine.lib.espeak_Synchronize()
    samples = np.concatenate(engine.chunks) if engine.chunks else np.zeros(0, dtype=np.int16)
    if status != 0 or not np.any(samples):
        raise RuntimeError(f"eSpeak NG produced no speech for {utt.text!r} with voice {utt.voice!r}")
    return samples


def _synthesize_here(utterances: list[_Utterance]) -> list[np.ndarray]:
    """Synthesize in order with this process's engine (the child's side of `_synthesize`)."""
    engine = _engine()
    return [_speak(engine, utt) for utt in utterances]


def _synthesize(utterances: list[_Utterance]) -> list[np.ndarray]:
    """Synthesize in a fresh child process, so that no earlier utterance leaves eSpeak state behind."""
    _espeak_paths()  # a missing optional dependency fails here, with the install hint, not in the child
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_synthesize_here, utterances).result()


def _to_float(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """int16 eSpeak output as float64 in [-1, 1] at `sample_rate`."""
    x = samples.astype(np.float64) / 32768.0
    g = gcd(SPEECH_RATE, sample_rate)
    return resample_poly(x, sample_rate // g, SPEECH_RATE // g)


def _trim(samples: np.ndarray) -> np.ndarray:
    """Cut leading and trailing silence, keeping a short margin around the speech."""
    level = np.abs(samples.astype(np.float64))
    loud = np.flatnonzero(level > TRIM_LEVEL * level.max())
    margin = int(TRIM_MARGIN_S * SPEECH_RATE)
    return samples[max(loud[0] - margin, 0) : loud[-1] + margin + 1]


def _at_peak(x: np.ndarray, peak: float) -> np.ndarray:
    """Scale so that the largest magnitude is `peak`."""
    return (x * (peak / np.abs(x).max())).astype(np.float32)


def _check_rate(sample_rate: int) -> None:
    """The target rate must be a positive integer that the noise filters can work with."""
    if int(sample_rate) != sample_rate or sample_rate < 4000:
        raise ValueError(f"sample_rate {sample_rate}: must be an integer of at least 4000 Hz")


def write_spoken_digits(
    out_dir: str | os.PathLike[str], seed: int, takes_per_voice: int = 12, sample_rate: int = 8000
) -> Path:
    """Synthesize "zero".."nine" by every voice in DIGIT_VOICES, `takes_per_voice` takes each, as 16-bit WAV.

    Each take draws its speaking rate, pitch, pitch range and level from a generator derived from
    (seed, voice, digit, take), so that takes differ like repeated recordings. Writes `metadata.csv`
    (path, label, speaker, take, rate, pitch) and returns its path; byte-identical for a seed.
    """
    if takes_per_voice < 1:
        raise ValueError(f"takes_per_voice {takes_per_voice}: must be at least 1")
    _check_rate(sample_rate)
    out = Path(out_dir)
    utterances: list[_Utterance] = []
    rows: list[dict[str, object]] = []
    levels: list[float] = []
    for voice in DIGIT_VOICES:
        for digit, word in enumerate(DIGIT_WORDS):
            for take in range(takes_per_voice):
                rng = generator(seed, "spoken-digit", voice, digit, take)
                utt = _Utterance(
                    voice=voice,
                    text=word,
                    rate=int(rng.integers(130, 231)),
                    pitch=int(rng.integers(20, 81)),
                    pitch_range=int(rng.integers(20, 91)),
                    noise_seed=int(rng.integers(0, 2**31 - 1)),
                )
                utterances.append(utt)
                levels.append(10 ** (rng.uniform(-6.0, -1.0) / 20))
                rel = f"{digit}/{voice.replace('+', '_')}_{take:02d}.wav"
                rows.append(
                    {"path": rel, "label": str(digit), "speaker": voice, "take": take,
                     "rate": utt.rate, "pitch": utt.pitch}
                )  # fmt: skip
    for row, clip, level in zip(rows, _synthesize(utterances), levels, strict=True):
        save_audio(out / str(row["path"]), _at_peak(_to_float(_trim(clip), sample_rate), level), sample_rate)
    meta = out / "metadata.csv"
    write_text(meta, pd.DataFrame(rows).to_csv(index=False, lineterminator="\n"))
    return meta


def _lowpass(x: np.ndarray, cutoff_hz: float, sample_rate: int) -> np.ndarray:
    """Fourth-order Butterworth low-pass."""
    return sosfilt(butter(4, cutoff_hz, btype="lowpass", fs=sample_rate, output="sos"), x)


def _unit_rms(x: np.ndarray) -> np.ndarray:
    """Scale to RMS 1."""
    return x / np.sqrt(np.mean(x**2))


def _car_noise(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Car cabin noise: engine harmonics at a slowly drifting RPM, brown-noise road rumble and some wind."""
    warm = sample_rate // 2  # filters settle during this lead-in, which is cut off
    t = np.arange(n + warm) / sample_rate
    drift = sum(
        rng.uniform(0.03, 0.08) * np.sin(2 * np.pi * rng.uniform(0.05, 0.4) * t + rng.uniform(0, 2 * np.pi))
        for _ in range(2)
    )
    rpm = rng.uniform(900.0, 2800.0) * (1.0 + drift)
    phase = 2 * np.pi * np.cumsum(rpm / 30.0) / sample_rate  # four-cylinder four-stroke: 2 firings a turn
    engine = sum(
        rng.uniform(0.5, 1.0) / order * np.sin(order * phase + rng.uniform(0, 2 * np.pi))
        for order in (0.5, 1, 1.5, 2, 3, 4, 5, 6)
    )
    brown = np.cumsum(rng.standard_normal(n + warm))
    highpass = butter(2, 20.0, btype="highpass", fs=sample_rate, output="sos")
    road = _lowpass(sosfilt(highpass, brown), rng.uniform(120.0, 350.0), sample_rate)
    gusts = 1.0 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * t + rng.uniform(0, 2 * np.pi))
    wind = gusts * _lowpass(rng.standard_normal(n + warm), 0.375 * sample_rate, sample_rate)
    mix = _unit_rms(engine) + rng.uniform(0.8, 1.6) * _unit_rms(road) + rng.uniform(0.1, 0.25) * _unit_rms(wind)
    return mix[warm:]


class _Talker(NamedTuple):
    """One voice in a babble clip: what it says, how loud, and where its window of speech starts."""

    utterance: _Utterance
    gain_db: float
    offset: float  # 0..1, position of the clip's window within the talker's speech


def _babble_plan(seed: int, pool: str, index: int) -> tuple[list[_Talker], float]:
    """The talkers of one babble clip (4-6 voices of the pool, two sentences each) and its peak level."""
    rng = generator(seed, "noise", "babble", pool, index)
    voices = rng.choice(BABBLE_VOICES[pool], size=int(rng.integers(4, 7)), replace=False)
    talkers = []
    for voice in voices:
        first, second = rng.choice(BABBLE_SENTENCES[pool], size=2, replace=False)
        utt = _Utterance(
            voice=str(voice),
            text=f"{first}. {second}.",
            rate=int(rng.integers(140, 211)),
            pitch=int(rng.integers(20, 81)),
            pitch_range=int(rng.integers(30, 81)),
            noise_seed=int(rng.integers(0, 2**31 - 1)),
        )
        talkers.append(_Talker(utt, float(rng.uniform(-6.0, 0.0)), float(rng.uniform(0.0, 1.0))))
    return talkers, float(rng.uniform(0.5, 0.8))


def _mix_babble(talkers: list[_Talker], speech: list[np.ndarray], n: int, sample_rate: int) -> np.ndarray:
    """Overlay an `n`-sample window of every talker's speech, each at its own gain."""
    mix = np.zeros(n)
    for talker, samples in zip(talkers, speech, strict=True):
        x = _unit_rms(_to_float(samples, sample_rate)) * 10 ** (talker.gain_db / 20)
        if len(x) >= n:
            start = int(talker.offset * (len(x) - n))
            mix += x[start : start + n]
        else:
            start = int(talker.offset * (n - len(x)))
            mix[start : start + len(x)] += x
    return mix


def write_noise(out_dir: str | os.PathLike[str], seed: int, sample_rate: int = 8000, clips_per_group: int = 12) -> Path:
    """Write the demo's background noise: `car` and `babble` groups, 3 s clips, in an augment and a test pool.

    The pools come from disjoint generators and, for babble, disjoint voices and sentences, so that no test
    noise is ever seen by augmentation. Writes `metadata.csv` (path, group, pool) and returns its path.
    """
    if clips_per_group < 1:
        raise ValueError(f"clips_per_group {clips_per_group}: must be at least 1")
    _check_rate(sample_rate)
    out = Path(out_dir)
    n = int(NOISE_SECONDS * sample_rate)
    rows: list[dict[str, str]] = []
    for pool in NOISE_POOLS:
        for i in range(clips_per_group):
            rng = generator(seed, "noise", "car", pool, i)
            rel = f"{pool}/car_{i:02d}.wav"
            car = _car_noise(rng, n, sample_rate)
            save_audio(out / rel, _at_peak(car, rng.uniform(0.4, 0.8)), sample_rate)
            rows.append({"path": rel, "group": "car", "pool": pool})
    plans = {pool: [_babble_plan(seed, pool, i) for i in range(clips_per_group)] for pool in NOISE_POOLS}
    utterances = [t.utterance for pool in NOISE_POOLS for talkers, _ in plans[pool] for t in talkers]
    said = iter(_synthesize(utterances))
    for pool in NOISE_POOLS:
        for i, (talkers, peak) in enumerate(plans[pool]):
            voices = [next(said) for _ in talkers]
            rel = f"{pool}/babble_{i:02d}.wav"
            save_audio(out / rel, _at_peak(_mix_babble(talkers, voices, n, sample_rate), peak), sample_rate)
            rows.append({"path": rel, "group": "babble", "pool": pool})
    meta = out / "metadata.csv"
    write_text(meta, pd.DataFrame(rows).to_csv(index=False, lineterminator="\n"))
    return meta
