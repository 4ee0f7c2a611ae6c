"""A corpus of bad (and a few good) files for the validate stage's per-file checks, made in memory.

`write_corpus(root, modality)` writes one file per case and returns {relative path: the check that must
report it}; "" marks a clean control that no per-file check may report. Other checks may report a bad file
too (a float file with NaN is also an unusual sample format). The expectations hold with the default check
settings, audio media {"sample_rate": 8000} and image media {"channels": 1}. Tests import the byte makers.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

CLEAN = ""
RATE = 8000


def wav_bytes(samples: np.ndarray, sample_rate: int = RATE, subtype: str = "PCM_16") -> bytes:
    """A WAV file's bytes (samples: (n,) or (n, channels) floats in [-1, 1])."""
    buffer = io.BytesIO()
    sf.write(buffer, samples, sample_rate, subtype=subtype, format="WAV")
    return buffer.getvalue()


def image_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    """An image file's bytes in format `fmt`."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def bomb_png(width: int, height: int) -> bytes:
    """A tiny valid 1x1 grey PNG whose IHDR claims `width` x `height` (CRC fixed): a decompression bomb's
    header without allocating its pixels."""
    data = bytearray(image_bytes(Image.new("L", (1, 1))))
    data[16:24] = struct.pack(">II", width, height)  # IHDR data starts after the 8-byte signature + 8
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # CRC over chunk type + 13 data bytes
    return bytes(data)


def tone(seconds: float = 1.0, sample_rate: int = RATE, amplitude: float = 0.5, freq: float = 440.0) -> np.ndarray:
    """A float32 sine: loud enough to have no silent sample (the phase offset keeps samples off the zero
    crossings), quiet enough never to clip."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq * t + 0.1)).astype(np.float32)


def clip(seed: int, seconds: float = 1.0, sample_rate: int = RATE) -> np.ndarray:
    """A distinct float32 clip per seed (noise bursts under a stepped envelope, 0.05..0.5): no silent 10 ms
    frame, no clipping, and no two seeds near-duplicates of each other."""
    rng = np.random.default_rng(seed)
    n = round(seconds * sample_rate)
    envelope = np.repeat(rng.uniform(0.05, 0.5, 20), -(-n // 20))[:n]
    return (rng.uniform(-1, 1, n) * envelope).astype(np.float32)


def noise_image(seed: int, size: tuple[int, int] = (64, 64), low: int = 40, high: int = 216) -> np.ndarray:
    """Sharp, mid-grey, high-entropy uint8 pixels (H, W): a clean image for every image check."""
    return np.random.default_rng(seed).integers(low, high, size=size, dtype=np.uint8)


def audio_cases() -> dict[str, tuple[bytes, str]]:
    """{file name: (bytes, expected check)} for audio; every file that decodes has its own content."""
    clean = wav_bytes(clip(0))
    mostly_silent = clip(1)
    mostly_silent[: round(0.73 * RATE)] = 0.0
    clipped = clip(2)
    clipped[100:120] = 1.0
    nan = clip(3)
    nan[1000:1040] = np.nan
    return {
        "clean.wav": (clean, CLEAN),
        "clean_2.wav": (wav_bytes(clip(4)), CLEAN),
        "empty.wav": (b"", "decode"),
        "truncated.wav": (clean[: len(clean) // 2], "decode"),
        "header_only_cut.wav": (clean[:30], "decode"),
        "text.wav": (b"this is not audio, just a text file\n", "decode"),
        "stereo.wav": (wav_bytes(np.stack([clip(5), clip(6)], axis=1)), "channels"),
        "pcm24.wav": (wav_bytes(clip(7), subtype="PCM_24"), "sample_format"),
        "float.wav": (wav_bytes(clip(8), subtype="FLOAT"), "sample_format"),
        "pcm8.wav": (wav_bytes(clip(9), subtype="PCM_U8"), "sample_format"),
        "nan.wav": (wav_bytes(nan, subtype="FLOAT"), "nonfinite"),
        "rate16k.wav": (wav_bytes(clip(10, sample_rate=16000), sample_rate=16000), "sample_rate"),
        "silent.wav": (wav_bytes(np.zeros(RATE, dtype=np.float32)), "silence"),
        "mostly_silent.wav": (wav_bytes(mostly_silent), "silence"),
        "clipped.wav": (wav_bytes(clipped), "clipping"),
    }


def image_cases() -> dict[str, tuple[bytes, str]]:
    """{file name: (bytes, expected check)} for images."""
    clean = image_bytes(Image.fromarray(noise_image(0)))
    clean_jpg = image_bytes(Image.fromarray(noise_image(1)), "JPEG")
    blocks = np.random.default_rng(15).integers(0, 2, size=(8, 8))
    two_level = np.where(np.kron(blocks, np.ones((8, 8), dtype=int)) > 0, 220, 30).astype(np.uint8)
    white = np.full((64, 64), 255, dtype=np.uint8)
    white[:16] = noise_image(2, (16, 64))
    rgba = np.dstack([noise_image(3, (64, 64)), noise_image(4), noise_image(5), np.full((64, 64), 128, np.uint8)])
    cmyk = Image.fromarray(np.dstack([noise_image(s) for s in (6, 7, 8, 9)]), mode="CMYK")
    palette = Image.fromarray(noise_image(10)).convert("P")
    ramp = np.tile(np.linspace(60, 190, 64), (64, 1)).astype(np.uint8)  # smooth: no edges at all
    return {
        "clean.png": (clean, CLEAN),
        "clean.jpg": (clean_jpg, CLEAN),
        "empty.png": (b"", "decode"),
        "empty.jpg": (b"", "decode"),
        "truncated.png": (clean[: len(clean) // 2], "decode"),
        "truncated.jpg": (clean_jpg[: len(clean_jpg) // 2], "decode"),
        "text.png": (b"<html>not an image</html>", "decode"),
        "bomb.png": (bomb_png(20000, 20000), "decode"),
        "rgba.png": (image_bytes(Image.fromarray(rgba, mode="RGBA")), "image_mode"),
        "grey16.png": (image_bytes(Image.fromarray(noise_image(11).astype(np.uint16) * 257)), "image_mode"),
        "cmyk.jpg": (image_bytes(cmyk, "JPEG"), "image_mode"),
        "palette.png": (image_bytes(palette), "image_mode"),
        "dark.png": (image_bytes(Image.fromarray(noise_image(12, low=0, high=40))), "dark"),
        "overexposed.png": (image_bytes(Image.fromarray(white)), "overexposed"),
        "flat.png": (image_bytes(Image.new("L", (64, 64), 128)), "low_information"),
        "two_level.png": (image_bytes(Image.fromarray(two_level)), "low_information"),
        "blurred.png": (image_bytes(Image.fromarray(ramp)), "blurry"),
        "tiny.png": (image_bytes(Image.fromarray(noise_image(13, (4, 4)))), "odd_size"),
        "elongated.png": (image_bytes(Image.fromarray(noise_image(14, (24, 160)))), "odd_size"),
    }


def write_corpus(root: Path, modality: str) -> dict[str, str]:
    """Write the `modality` corpus under `root`; {relative path: the check that must report it, "" = none}."""
    cases = audio_cases() if modality == "audio" else image_cases()
    root.mkdir(parents=True, exist_ok=True)
    for name, (data, _) in cases.items():
        (root / name).write_bytes(data)
    return {name: expected for name, (_, expected) in cases.items()}
