"""Decode and encode images and audio, and resolve sample paths safely inside a data root.

Every failure raises `MediaError` naming the file and the reason; nothing is skipped silently.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image
from scipy.signal import resample_poly

from curation.io import write_bytes

MAX_IMAGE_PIXELS = 50_000_000  # larger headers are refused before decoding (decompression bombs)


class MediaError(ValueError):
    """A file that cannot be used, with the file and the reason."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def resolve_inside(root: str | os.PathLike[str], relative: str) -> Path:
    """The path of `relative` under `root`; refuse absolute paths, `..` escapes and symlinks leading outside."""
    rel = str(relative)
    if os.path.isabs(rel):
        raise MediaError(rel, "absolute path; paths must be relative to the data root")
    root_real = Path(root).resolve()
    candidate = Path(root) / rel
    real = candidate.resolve()
    if not real.is_relative_to(root_real):
        raise MediaError(rel, f"path leads outside the data root {root}")
    if not candidate.exists():
        raise MediaError(rel, "file not found")
    if not candidate.is_file():
        raise MediaError(rel, "not a regular file")
    return candidate


def load_audio(path: str | os.PathLike[str], sample_rate: int) -> np.ndarray:
    """Mono float32 samples in [-1, 1] at `sample_rate` (multi-channel files are averaged, others resampled)."""
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise MediaError(path, f"cannot decode audio: {exc}") from exc
    if data.shape[0] == 0:
        raise MediaError(path, "audio has no samples")
    if not np.isfinite(data).all():
        raise MediaError(path, "audio contains NaN or infinite samples")
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if sr != sample_rate:
        g = np.gcd(int(sr), int(sample_rate))
        mono = resample_poly(mono, sample_rate // g, sr // g).astype(np.float32)
    return np.ascontiguousarray(mono, dtype=np.float32)


def encode_audio(samples: np.ndarray, sample_rate: int) -> bytes:
    """16-bit PCM WAV bytes (samples clipped to [-1, 1]), the same bytes `save_audio` writes: encoded in memory,
    so a caller can name a file by its content hash before writing it."""
    x = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    buf = io.BytesIO()
    sf.write(buf, x, sample_rate, subtype="PCM_16", format="WAV")
    return buf.getvalue()


def save_audio(path: str | os.PathLike[str], samples: np.ndarray, sample_rate: int) -> None:
    """Write 16-bit PCM WAV atomically (samples clipped to [-1, 1]).

    Encoded in memory, then written: libsndfile closing a file it wrote also fsyncs it, which made writing a
    short clip five times slower (temp file + rename already keeps a reader from seeing half a file)."""
    write_bytes(path, encode_audio(samples, sample_rate))


def load_image(path: str | os.PathLike[str], channels: int = 1) -> np.ndarray:
    """uint8 pixels, HxW for `channels`=1 or HxWx3 for 3; refuses undecodable files and oversize headers."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise MediaError(path, f"cannot read: {exc.strerror}") from exc
    if not data:
        raise MediaError(path, "empty file")
    try:
        with Image.open(io.BytesIO(data)) as img:
            w, h = img.size
            if w * h > MAX_IMAGE_PIXELS:
                raise MediaError(path, f"image header claims {w}x{h} pixels, over {MAX_IMAGE_PIXELS}")
            img.load()
            high_depth = img.mode.startswith("I") or img.mode == "F"
            if channels == 1 or high_depth:
                grey = grey_pixels(img)
                pixels = grey if channels == 1 else np.repeat(grey[:, :, None], 3, axis=2)
            else:
                pixels = np.asarray(img.convert("RGB"), dtype=np.uint8)
    except MediaError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise MediaError(path, f"cannot decode image: {exc}") from exc
    return pixels


def grey_pixels(img: Image.Image) -> np.ndarray:
    """The 8-bit grey pixels (HxW uint8) of a decoded image, whatever its mode.

    16- and 32-bit integer images are scaled by their bit depth (65535 -> 255; PIL's own conversion clips
    instead, turning most of a 16-bit image white); "I" images whose values fit 16 bits are 16-bit files,
    as PIL opens them. Float ("F") images are taken as [0, 1]. Every other mode (RGB, RGBA, LA, P, CMYK,
    1, ...) goes through PIL's `convert("L")`: alpha is dropped, not composited.
    """
    if img.mode.startswith("I;16") or img.mode == "I":
        values = np.asarray(img).astype(np.float64)
        if img.mode == "I" and (values.min() < 0 or values.max() > 65535):
            values, full = values - np.iinfo(np.int32).min, float(np.iinfo(np.uint32).max)
        else:
            full = 65535.0
        return np.rint(values * (255.0 / full)).astype(np.uint8)
    if img.mode == "F":
        return np.rint(np.clip(np.nan_to_num(np.asarray(img, dtype=np.float64)), 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.asarray(img.convert("L"), dtype=np.uint8)


def encode_image(pixels: np.ndarray) -> bytes:
    """PNG bytes of HxW grey or HxWx3 RGB uint8 pixels, the same bytes `save_image` writes."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def save_image(path: str | os.PathLike[str], pixels: np.ndarray) -> None:
    """Write a PNG atomically (HxW grey or HxWx3 RGB uint8)."""
    write_bytes(path, encode_image(pixels))
