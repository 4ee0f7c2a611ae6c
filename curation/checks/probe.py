"""The probe: read each sample's file once, hash and decode it in memory, and measure what the checks need.

`probe_file` turns one file into one flat row (columns in `PROBE_COLUMNS`); `probe_files` does it for a
listing, serially or in a process pool, with identical output. Bad content never raises: the reason goes
into `decode_error`, which the `decode` check (`decode.py`) reports. Audio is measured at its native rate
and channel count (the validate stage resamples later, when it loads).
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import struct
import warnings
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import soundfile as sf
from PIL import Image
from tqdm import tqdm

from curation.checks.duplicates import audio_fingerprint, image_fingerprint
from curation.media import MAX_IMAGE_PIXELS, grey_pixels

# common: sha256 of the file's bytes; decode_error ("" = decoded); content_hash, md5 of the decoded data
#   (image: native array + shape + mode (+ palette); audio: float32 samples at the native rate + rate +
#   channels), equal for identical content in different encodings; fingerprint, a 64-bit perceptual hash.
# audio (native file): sample_rate, channels, subtype (soundfile's, e.g. PCM_16), seconds; shares of NaN/inf
#   samples, of digitally silent samples of the mono mix (|x| below SILENCE_DBFS) and of clipped samples (all
#   channels, |x| >= CLIP_LEVEL); peak_dbfs and rms_dbfs over all channels, non-finite samples as 0.
# image: format and mode (PIL's, as stored), width, height; on the 8-bit grey image: brightness (mean, 0..1),
#   dark_share (< DARK_LEVEL), overexposed_share (> BRIGHT_LEVEL), blur (variance of the Laplacian, see
#   `_laplacian_variance`), entropy (bits of the 256-bin histogram, 0..8).
PROBE_COLUMNS: dict[str, tuple[str, ...]] = {
    "common": ("sha256", "decode_error", "content_hash", "fingerprint"),
    "audio": (
        "sample_rate",
        "channels",
        "subtype",
        "seconds",
        "nonfinite_share",
        "silence_share",
        "clipping_share",
        "peak_dbfs",
        "rms_dbfs",
    ),
    "image": ("format", "mode", "width", "height", "brightness", "dark_share", "overexposed_share", "blur", "entropy"),
}
_TEXT_COLUMNS = {"sha256", "content_hash", "fingerprint", "subtype", "format", "mode"}
_INT_COLUMNS = {"sample_rate", "channels", "width", "height"}

PROGRESS_MIN_FILES = 200  # show a progress bar from this many files on
# Digital silence: a sample of the mono mix under -80 dBFS (1e-4 of full scale, below a 16-bit file's few
# lowest steps). A quiet room sits at -70 to -50 dBFS, so it does not count: the check finds zero padding,
# dropouts and clips that are mostly nothing, and agrees with ESC-50's own silence measure (156 of 156 clips
# on the same side of 30%, or all but one).
SILENCE_DBFS = -80.0
CLIP_LEVEL = 0.999  # a sample at or above this magnitude counts as clipped
DBFS_FLOOR = -120.0  # peak/RMS of digital silence: a finite floor instead of -inf, so tables stay numeric
DARK_LEVEL = 0.1  # grey level (0..1) below which a pixel is dark
BRIGHT_LEVEL = 0.98  # grey level (0..1) above which a pixel is overexposed
BLUR_MAX_SIDE = 256  # the Laplacian runs on the grey image shrunk to this longer side (as CleanVision does)
_IMAGE_DECODE_ERRORS = (
    OSError,  # includes PIL.UnidentifiedImageError and "image file is truncated"
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
)


def probe_file(path: Path, modality: str, media: dict[str, Any]) -> dict[str, Any]:
    """One row of measurements for the file at `path` (read once): sha256 of its bytes, then the decoded
    content's hash, perceptual fingerprint and quality statistics (see `PROBE_COLUMNS`).

    Why: the checks need all of this, and a file read once cannot change between hashing and decoding.
    Unreadable or undecodable content sets `decode_error` (the other measurements stay empty) instead of
    raising; image headers over `media.MAX_IMAGE_PIXELS` are refused before any pixel is decoded. `media`
    (the data set's media settings) does not change the measurements: they describe the file as stored.
    """
    _require_modality(modality)
    row = _empty_row(modality)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        row["decode_error"] = f"cannot read: {exc.strerror or exc}"
        return row
    row["sha256"] = hashlib.sha256(data).hexdigest()
    if not data:
        row["decode_error"] = "empty file (0 bytes)"
        return row
    if modality == "audio":
        row.update(_probe_audio(data))
    else:
        row.update(_probe_image(data, MAX_IMAGE_PIXELS))
    return row


def probe_files(
    paths: list[Path | None], modality: str, media: dict[str, Any], desc: str = "probe", workers: int = 1
) -> pd.DataFrame:
    """`probe_file` for every path, one row each in order (None = a path that could not be resolved: empty
    measurements and no decode error, since the path check reports it). `workers` > 1 probes in a process
    pool (chunked); the table is identical to the serial one. A progress bar shows from 200 files on.
    """
    _require_modality(modality)
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    probe = partial(_probe_or_empty, modality=modality, media=media)
    quiet = None if len(paths) >= PROGRESS_MIN_FILES else True  # None: tqdm shows the bar on terminals only
    if workers == 1 or len(paths) < 2:
        rows = [probe(p) for p in tqdm(paths, desc=desc, unit="file", disable=quiet, leave=False)]
    else:
        chunk = max(1, math.ceil(len(paths) / (workers * 8)))
        with ProcessPoolExecutor(max_workers=workers) as pool:
            mapped = pool.map(probe, paths, chunksize=chunk)
            rows = list(tqdm(mapped, total=len(paths), desc=desc, unit="file", disable=quiet, leave=False))
    columns = PROBE_COLUMNS["common"] + PROBE_COLUMNS[modality]
    table = pd.DataFrame.from_records(rows, columns=list(columns))
    for col in columns:
        if col in _INT_COLUMNS:
            table[col] = table[col].astype("Int64")
        elif col in _TEXT_COLUMNS or col == "decode_error":
            table[col] = table[col].astype(object)
        else:
            table[col] = table[col].astype(np.float64)
    return table


def _require_modality(modality: str) -> None:
    """Refuse a modality the probe does not know (a programming or settings error, not a file's fault)."""
    if modality not in ("audio", "image"):
        raise ValueError(f"unknown modality {modality!r}; expected audio or image")


def _probe_or_empty(path: Path | None, modality: str, media: dict[str, Any]) -> dict[str, Any]:
    """`probe_file`, or the empty row for a path that could not be resolved."""
    return _empty_row(modality) if path is None else probe_file(path, modality, media)


def _empty_row(modality: str) -> dict[str, Any]:
    """A row with every probe column empty: None for text and integers, NaN for measurements."""
    columns = PROBE_COLUMNS["common"] + PROBE_COLUMNS[modality]
    row = {c: None if c in _TEXT_COLUMNS or c in _INT_COLUMNS else math.nan for c in columns}
    row["decode_error"] = ""
    return row


def _md5(*parts: bytes) -> str:
    """md5 hex of the concatenated parts."""
    digest = hashlib.md5(usedforsecurity=False)
    for part in parts:
        digest.update(part)
    return digest.hexdigest()


def _describe_start(data: bytes) -> str:
    """How the file begins, for a reason: 'starts with text 'abc...'' or 'starts with bytes 00 01 02 03'."""
    head = data[:64]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:  # a prefix may cut a multi-byte character at its end
        text = head[: exc.start].decode("utf-8") if exc.start >= len(head) - 3 else ""
    if text and all(ch.isprintable() or ch in "\t\n\r" for ch in text):
        shown = " ".join(text.split())
        return f"starts with text {shown[:24] + '...' if len(shown) > 24 else shown!r}"
    return "starts with bytes " + " ".join(f"{b:02x}" for b in data[:8])


def _dbfs(amplitude: float) -> float:
    """Amplitude (1.0 = full scale) in dBFS, floored at DBFS_FLOOR."""
    return max(DBFS_FLOOR, 20.0 * math.log10(amplitude)) if amplitude > 0 else DBFS_FLOOR


def _wav_shortfall(data: bytes) -> tuple[int, int] | None:
    """(declared, present) bytes of a RIFF/WAVE file's data chunk when the file ends before it does.

    libsndfile silently decodes the part that is there, so a download cut short would pass as a shorter
    clip. Placeholder sizes (0, 0xFFFFFFFF, written by streaming recorders) are not counted as truncation.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if chunk == b"data":
            present = len(data) - pos - 8
            return (size, present) if present < size < 0xFFFFFFFF else None
        pos += 8 + size + (size & 1)
    return None


def _probe_audio(data: bytes) -> dict[str, Any]:
    """Audio measurements at the native rate and channel count; `decode_error` set when it cannot decode."""
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            sample_rate, channels, subtype = int(f.samplerate), int(f.channels), str(f.subtype)
            samples = f.read(dtype="float32", always_2d=True)
    except (RuntimeError, ValueError) as exc:  # soundfile.LibsndfileError is a RuntimeError
        message = str(getattr(exc, "error_string", exc))
        start = _describe_start(data)
        if start.startswith("starts with text"):
            return {"decode_error": f"not an audio file: {start}"}
        return {"decode_error": f"cannot decode audio: {message} ({start})"}
    shortfall = _wav_shortfall(data)
    if shortfall is not None:
        declared, present = shortfall
        return {"decode_error": f"truncated audio: the WAV data chunk declares {declared} bytes, {present} are there"}
    if samples.shape[0] == 0:
        return {"decode_error": "audio has no samples (header only)"}
    finite = np.isfinite(samples)
    clean = np.where(finite, samples, np.float32(0.0)).astype(np.float64)
    mono = clean.mean(axis=1)
    magnitude = np.abs(clean)
    return {
        "content_hash": _md5(samples.tobytes(), f"{sample_rate}:{channels}".encode()),
        "fingerprint": _informative(audio_fingerprint(mono.astype(np.float32), sample_rate)),
        "sample_rate": sample_rate,
        "channels": channels,
        "subtype": subtype,
        "seconds": samples.shape[0] / sample_rate,
        "nonfinite_share": float((~finite).mean()),
        "silence_share": _silence_share(mono),
        "clipping_share": float((magnitude >= CLIP_LEVEL).mean()),
        "peak_dbfs": _dbfs(float(magnitude.max())),
        "rms_dbfs": _dbfs(math.sqrt(float(np.mean(clean**2)))),
    }


def _informative(fingerprint: str) -> str:
    """The fingerprint, or "" when it is all zeros: silence, a flat image and a steady tone all hash to zero,
    which says nothing about their content, so such samples are never near duplicates of each other."""
    return fingerprint if int(fingerprint, 16) else ""


def _silence_share(mono: np.ndarray) -> float:
    """Share of the mono mix's samples that are digitally silent (magnitude below SILENCE_DBFS)."""
    return float((np.abs(mono) < 10.0 ** (SILENCE_DBFS / 20.0)).mean())


def _probe_image(data: bytes, max_pixels: int) -> dict[str, Any]:
    """Image measurements on the grey image; `decode_error` set when it cannot decode or is too large.

    PIL's decompression-bomb warning is turned into an error here, so it never escapes as a warning.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
                if width * height > max_pixels:
                    return {"decode_error": f"image header claims {width}x{height} pixels, over {max_pixels}"}
                img.load()
                native = np.asarray(img)
                palette = bytes(img.getpalette() or []) if img.mode in ("P", "PA") else b""
                grey = grey_pixels(img)
                fmt, mode = str(img.format), str(img.mode)
    except Image.UnidentifiedImageError:
        start = _describe_start(data)
        kind = "not an image file" if start.startswith("starts with text") else "unknown or damaged image format"
        return {"decode_error": f"{kind}: {start}"}
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        claimed = re.search(r"\((\d+) pixels\)", str(exc))  # PIL checks before we see the size
        return {
            "decode_error": f"image header claims {claimed[1] if claimed else 'too many'} pixels, over {max_pixels}"
        }
    except _IMAGE_DECODE_ERRORS as exc:
        message = str(exc) or type(exc).__name__
        kind = "truncated image" if "truncat" in message.lower() else "cannot decode image"
        return {"decode_error": f"{kind}: {message}"}
    hist = np.bincount(grey.ravel(), minlength=256).astype(np.float64)
    p = hist[hist > 0] / grey.size
    return {
        "content_hash": _md5(native.tobytes(), repr(native.shape).encode(), mode.encode(), palette),
        "fingerprint": _informative(image_fingerprint(grey)),
        "format": fmt,
        "mode": mode,
        "width": width,
        "height": height,
        "brightness": float(grey.mean() / 255.0),
        "dark_share": float((grey < DARK_LEVEL * 255.0).mean()),
        "overexposed_share": float((grey > BRIGHT_LEVEL * 255.0).mean()),
        "blur": _laplacian_variance(grey),
        "entropy": float(max(0.0, -(p * np.log2(p)).sum())),
    }


def _laplacian_variance(grey: np.ndarray) -> float:
    """Variance of the 3x3 Laplacian of the grey image (0-255 scale), shrunk so its longer side is at most
    BLUR_MAX_SIDE: sharp edges give large values, blur small ones, and the size no longer matters much."""
    height, width = grey.shape
    scale = BLUR_MAX_SIDE / max(height, width)
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())
