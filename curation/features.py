"""Model inputs: image tensors and log-mel spectrograms, from files on disk to what the networks consume.

`load_inputs` reads files into fixed-size tensors (images (N, C, H, W) in [0, 1]; audio (N, T) waveforms).
`to_model_input` is the one place where waveforms become normalised log-mels: the networks call it in their
`forward`, so training, prediction and every later stage see exactly the same features.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from curation.media import load_audio, load_image
from curation.mel import hz_to_mel, mel_to_hz

LOG_EPS = 1e-6  # added to mel power before the log, so that silence gives a finite floor
NORM_EPS = 1e-5  # added to the per-utterance standard deviation, so that silence normalises to zeros
PROGRESS_MIN_FILES = 300  # show a progress bar from this many files on
MODALITIES = ("image", "audio")


def _mel_edges(sample_rate: int, n_mels: int) -> np.ndarray:
    """n_mels + 2 frequencies (Hz), equally spaced in mel from 0 to Nyquist; filter m spans edges m..m+2."""
    return mel_to_hz(np.linspace(0.0, hz_to_mel(sample_rate / 2.0), n_mels + 2))


def mel_centres(sample_rate: int, n_mels: int) -> np.ndarray:
    """Centre frequencies (Hz) of the `n_mels` filters of `mel_filterbank`."""
    return _mel_edges(sample_rate, n_mels)[1:-1]


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> torch.Tensor:
    """Triangular HTK mel filters, shape (n_mels, n_fft // 2 + 1), each peaking at its centre frequency.

    Filter m rises linearly from centre m-1 to centre m and falls to centre m+1 (the outer edges are 0 Hz and
    Nyquist). No area normalisation: the features are normalised per utterance downstream anyway.
    Raises ValueError when a filter covers no FFT bin (too many mels for this FFT size): such a band would be
    a constant, useless feature.
    """
    if sample_rate <= 0 or n_fft < 2 or n_mels < 1:
        raise ValueError(
            f"mel filterbank needs sample_rate > 0, n_fft >= 2, n_mels >= 1; got {sample_rate}, {n_fft}, {n_mels}"
        )
    edges = _mel_edges(sample_rate, n_mels)
    freqs = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None, :] - left) / (centre - left)
    falling = (right - freqs[None, :]) / (right - centre)
    weights = np.clip(np.minimum(rising, falling), 0.0, None)
    empty = np.flatnonzero(weights.sum(axis=1) == 0)
    if empty.size:
        raise ValueError(
            f"mel filter(s) {empty.tolist()} cover no FFT bin with n_fft={n_fft} at "
            f"{sample_rate} Hz; use fewer than {n_mels} mels or a larger n_fft"
        )
    return torch.from_numpy(weights.astype(np.float32))


@lru_cache(maxsize=8)
def _shared_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> torch.Tensor:
    """The filterbank built once per setting, for `log_mel` (never modified in place)."""
    return mel_filterbank(sample_rate, n_fft, n_mels)


def log_mel(x: torch.Tensor, sample_rate: int, n_fft: int, hop: int, n_mels: int) -> torch.Tensor:
    """Log mel power spectrogram of a batch of waveforms (B, T) -> (B, n_mels, 1 + T // hop).

    Centred Hann-windowed STFT (reflect padding), power |X|^2, mel filters, then log(mel + 1e-6).
    The reflect padding is two flipped slices: the same frames, hence the same bits, as `torch.stft(center=True)`,
    whose padding costs a third of the transform itself.
    """
    if x.dim() != 2:
        raise ValueError(f"log_mel expects waveforms shaped (batch, samples), got {tuple(x.shape)}")
    half = n_fft // 2
    if x.shape[1] <= half:
        raise ValueError(f"log_mel reflect-pads by n_fft // 2 = {half} samples: waveforms need more, got {x.shape[1]}")
    x = x.float()
    padded = torch.cat([x[:, 1 : half + 1].flip(1), x, x[:, -half - 1 : -1].flip(1)], dim=1)
    window = torch.hann_window(n_fft, dtype=x.dtype, device=x.device)
    spec = torch.stft(padded, n_fft=n_fft, hop_length=hop, win_length=n_fft, window=window, center=False,
                      return_complex=True)  # fmt: skip
    power = spec.real.square() + spec.imag.square()
    fb = _shared_filterbank(int(sample_rate), int(n_fft), int(n_mels)).to(device=x.device, dtype=x.dtype)
    return torch.log(torch.matmul(fb, power) + LOG_EPS)


def media_config(cfg: dict[str, Any], modality: str) -> dict[str, Any]:
    """The modality's media settings: cfg[modality] (e.g. {"audio": {...}}), else cfg["media"] (the name used
    in params.yaml), so that a data set's params entry and a {modality: settings} dict both work."""
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; expected one of {MODALITIES}")
    section = cfg.get(modality, cfg.get("media"))
    if not isinstance(section, dict):
        raise ValueError(
            f"no {modality} settings: expected a mapping at cfg[{modality!r}] or cfg['media']; "
            f"the config has {sorted(cfg)}"
        )
    return section


def to_model_input(x: torch.Tensor, modality: str, cfg: dict[str, Any]) -> torch.Tensor:
    """What the networks consume, always (B, C, H, W): images pass through; waveforms (B, T) become log-mels
    (B, 1, n_mels, frames) normalised per utterance to zero mean and unit variance (so loudness and recording
    gain do not matter), with the audio settings {sample_rate, n_fft, hop, n_mels} of `media_config`.
    The networks call this in `forward`, so training and prediction cannot diverge. (The image network then
    standardises per channel with its training inputs' statistics, which it stores: `models.SmallCNN`.)
    """
    if modality == "image":
        return x
    a = media_config(cfg, modality)
    mel = log_mel(x, a["sample_rate"], a["n_fft"], a["hop"], a["n_mels"])
    mean = mel.mean(dim=(1, 2), keepdim=True)
    std = mel.std(dim=(1, 2), keepdim=True, unbiased=False)
    return ((mel - mean) / (std + NORM_EPS)).unsqueeze(1)


def _fit_length(samples: np.ndarray, length: int) -> np.ndarray:
    """Crop a longer waveform to its loudest `length` samples, or zero-pad a shorter one symmetrically.

    Why the loudest window and not the centre: a 2 s recording may hold its word in the first 0.3 s (FSDD has
    such takes); a centre crop would keep only the silence after it. Ties go to the earliest window.
    """
    n = samples.shape[0]
    if n >= length:
        energy = np.concatenate([[0.0], np.cumsum(np.square(samples, dtype=np.float64))])
        start = int(np.argmax(energy[length:] - energy[: n - length + 1]))
        return samples[start : start + length]
    out = np.zeros(length, dtype=np.float32)
    start = (length - n) // 2
    out[start : start + n] = samples
    return out


def _fit_image(pixels: np.ndarray, size: int) -> np.ndarray:
    """Resize uint8 pixels to size x size (bilinear, antialiased when shrinking; aspect ratio not kept)."""
    if pixels.shape[0] == size and pixels.shape[1] == size:
        return pixels
    resized = Image.fromarray(pixels).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8)


def _fill(samples: Iterable[np.ndarray], n: int, modality: str, settings: dict[str, Any]) -> torch.Tensor:
    """`n` decoded samples, fitted one by one into one preallocated float32 tensor (see `load_inputs`)."""
    if modality == "image":
        size, channels = int(settings["size"]), int(settings["channels"])
        if channels not in (1, 3):
            raise ValueError(f"image channels must be 1 or 3, got {channels}")
        images = np.empty((n, channels, size, size), dtype=np.float32)
        for i, x in enumerate(samples):
            pixels = _fit_image(x, size)
            images[i] = pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)
        images /= np.float32(255.0)
        return torch.from_numpy(images)
    length = round(float(settings["seconds"]) * int(settings["sample_rate"]))
    waves = np.empty((n, length), dtype=np.float32)
    for i, x in enumerate(samples):
        waves[i] = _fit_length(x, length)
    return torch.from_numpy(waves)


def to_inputs(samples: Sequence[np.ndarray], modality: str, cfg: dict[str, Any]) -> torch.Tensor:
    """Decoded samples (as `media.load_audio` / `media.load_image` return them) as `load_inputs` makes of their
    files: for scoring arrays already in memory without reading them again."""
    return _fill(samples, len(samples), modality, media_config(cfg, modality))


def load_inputs(paths: Sequence[str], modality: str, cfg: dict[str, Any]) -> torch.Tensor:
    """Read files into one float32 tensor, with the settings of `media_config`: images (N, C, size, size) in
    [0, 1] from {size, channels}; audio (N, seconds * sample_rate) from {sample_rate, seconds}, cropped to the
    loudest window or zero-padded (centred).

    Decoding errors propagate as `MediaError` naming the file. A progress bar shows for large sets.
    """
    settings = media_config(cfg, modality)
    quiet = None if len(paths) >= PROGRESS_MIN_FILES else True  # None: tqdm shows the bar on terminals only
    files = tqdm(paths, desc=f"loading {modality}", unit="file", disable=quiet, leave=False)
    if modality == "image":
        decoded = (load_image(path, int(settings["channels"])) for path in files)
    else:
        decoded = (load_audio(path, int(settings["sample_rate"])) for path in files)
    return _fill(decoded, len(paths), modality, settings)
