"""Pure numpy signal functions behind the audio transforms: no randomness, no state, no I/O.

Arithmetic runs in float64; every array result is float32, the sample dtype of the whole project.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import signal as sps

# Telephone channels are narrow-band: above this rate the signal is taken down to it and back up.
TELEPHONE_RATE = 8000
# Peak that `prevent_clipping` rescales to: a little headroom below full scale.
CLIP_PEAK = 0.99
# Order of the telephone band-pass; applied forward and backward, so the effective order is twice this.
BANDPASS_ORDER = 4


def _checked(x: np.ndarray, what: str = "samples") -> np.ndarray:
    """A non-empty 1-D float array as it is; anything else is a caller error."""
    x = np.asarray(x)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"{what} must be a non-empty 1-D array, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{what} must be floating point (samples in [-1, 1]), got dtype {x.dtype}")
    return x


def _samples(x: np.ndarray, what: str = "samples") -> np.ndarray:
    """A float64 view of a non-empty 1-D float array; anything else is a caller error."""
    return _checked(x, what).astype(np.float64, copy=False)


def rms(x: np.ndarray) -> float:
    """Root mean square of a clip: the level used for SNRs and silence checks."""
    x = _samples(x)
    return math.sqrt(float(np.mean(x * x)))


def mix_at_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Signal plus noise scaled so that 10*log10(P_signal / P_noise) equals `snr_db` over the whole clip.

    The SNR is undefined if either part is silent, so that is an error rather than a guess.
    """
    s = _samples(signal, "signal")
    n = _samples(noise, "noise")
    if s.shape != n.shape:
        raise ValueError(f"signal and noise must have the same length, got {s.size} and {n.size}")
    if not math.isfinite(snr_db):
        raise ValueError(f"snr_db must be finite, got {snr_db}")
    p_signal = float(np.mean(s * s))
    p_noise = float(np.mean(n * n))
    if p_signal == 0.0:
        raise ValueError("signal is silent: an SNR relative to it is undefined")
    if p_noise == 0.0:
        raise ValueError("noise is silent: it cannot be scaled to any SNR")
    scale = math.sqrt(p_signal / (p_noise * 10.0 ** (snr_db / 10.0)))
    return (s + scale * n).astype(np.float32)


def gain_db(x: np.ndarray, db: float) -> np.ndarray:
    """The clip multiplied by a gain given in decibels."""
    if not math.isfinite(db):
        raise ValueError(f"gain must be finite, got {db} dB")
    return scale_samples(x, 10.0 ** (db / 20.0))


def fit_length(noise: np.ndarray, n: int, offset: int) -> np.ndarray:
    """`n` samples of a noise clip read cyclically from `offset`, so any clip covers any length."""
    noise = _checked(noise, "noise")  # copied, not converted: float32 samples keep their bits either way
    if n < 1:
        raise ValueError(f"length must be at least 1, got {n}")
    if not 0 <= offset < noise.size:
        raise ValueError(f"offset must be in [0, {noise.size}), got {offset}")
    if offset + n <= noise.size:  # the usual case, a plain slice
        return noise[offset : offset + n].astype(np.float32)
    return np.take(noise, np.arange(offset, offset + n), mode="wrap").astype(np.float32)


def scale_samples(x: np.ndarray, factor: float) -> np.ndarray:
    """The clip multiplied by a linear factor (the one step shared by clipping prevention and its replay)."""
    if not math.isfinite(factor):
        raise ValueError(f"scale factor must be finite, got {factor}")
    return (_samples(x) * factor).astype(np.float32)


def prevent_clipping(x: np.ndarray) -> tuple[np.ndarray, float]:
    """The clip rescaled to peak CLIP_PEAK if its peak exceeds 1, and the factor used (1.0 if untouched)."""
    x = _checked(x)
    peak = float(np.max(np.abs(x)))  # exact in the samples' own dtype: no float64 copy needed
    if not peak > 1.0:  # (a NaN peak too, as before: the samples pass unscaled)
        return x.astype(np.float32), 1.0  # a copy, with the bits `scale_samples(x, 1.0)` would give
    factor = CLIP_PEAK / peak
    return scale_samples(x, factor), factor


def mu_law_quantize(x: np.ndarray, bits: int) -> np.ndarray:
    """Integer mu-law codes of a clip (clipped to [-1, 1]), mid-tread so that silence stays exactly zero.

    Codes lie in [-(2**(bits-1) - 1), 2**(bits-1) - 1]: at most 2**bits levels.
    """
    mu, top = _mu_law_constants(bits)
    x = np.clip(_samples(x), -1.0, 1.0)
    compressed = np.sign(x) * np.log1p(mu * np.abs(x)) / math.log1p(mu)
    return np.rint(compressed * top).astype(np.int32)


def mu_law_expand(codes: np.ndarray, bits: int) -> np.ndarray:
    """Samples back from mu-law codes made by `mu_law_quantize` with the same number of bits."""
    mu, top = _mu_law_constants(bits)
    y = np.asarray(codes, dtype=np.float64) / top
    return (np.sign(y) * np.expm1(np.abs(y) * math.log1p(mu)) / mu).astype(np.float32)


def _mu_law_constants(bits: int) -> tuple[float, int]:
    """(mu, largest code) for a code width; G.711 telephony uses 8 bits, mu = 255."""
    if isinstance(bits, bool) or not isinstance(bits, int | np.integer) or not 2 <= bits <= 16:
        raise ValueError(f"mu-law bits must be an integer in [2, 16], got {bits!r}")
    return float(2**bits - 1), 2 ** (bits - 1) - 1


@lru_cache(maxsize=32)
def _bandpass(low_hz: float, high_hz: float, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """The telephone band-pass (second-order sections) and its step response's steady state per section
    (`sps.sosfilt_zi`), made once per band and rate; read-only."""
    sos = sps.butter(BANDPASS_ORDER, [low_hz, high_hz], btype="bandpass", fs=sr, output="sos")
    zi = sps.sosfilt_zi(sos)
    sos.flags.writeable = zi.flags.writeable = False
    return sos, zi


def _zero_phase(sos: np.ndarray, zi: np.ndarray, x: np.ndarray, padlen: int) -> np.ndarray:
    """`sps.sosfiltfilt(sos, x, padlen=padlen)` of a 1-D float64 clip (0 <= padlen < x.size), the same bits, with
    `zi` (its `sps.sosfilt_zi`) solved once per filter instead of per call: that took 40% of the filtering.

    The clip is extended by `padlen` samples at each end by odd reflection, filtered forward from the steady
    state of its first sample, then backward from that of the last, and the extension cut off again."""
    if padlen > 0:
        x = np.concatenate([2 * x[:1] - x[padlen:0:-1], x, 2 * x[-1:] - x[-2 : -padlen - 2 : -1]])
    y, _ = sps.sosfilt(sos, x, zi=zi * x[:1])
    y, _ = sps.sosfilt(sos, y[::-1], zi=zi * y[-1:])
    return y[::-1][padlen : len(y) - padlen]


def telephone(x: np.ndarray, sr: int, low_hz: float, high_hz: float, mu_law_bits: int) -> np.ndarray:
    """A clip as heard through a telephone line: band-pass, narrow-band resampling, mu-law quantization.

    The Butterworth band-pass runs forward and backward (zero phase, so words stay where they were).
    Above TELEPHONE_RATE the clip goes down to it and back, losing what a phone line cannot carry.
    Samples beyond full scale clip in the quantizer, as they would on a real line.
    """
    x = _samples(x)
    if isinstance(sr, bool) or not isinstance(sr, int | np.integer) or sr < 1:
        raise ValueError(f"sample rate must be a positive int, got {sr!r}")
    sr = int(sr)
    nyquist = min(sr, TELEPHONE_RATE) / 2
    if not 0 < low_hz < high_hz < nyquist:
        raise ValueError(
            f"telephone band must satisfy 0 < low_hz < high_hz < {nyquist:g} Hz at {sr} Hz, got {low_hz}-{high_hz} Hz"
        )
    sos, zi = _bandpass(float(low_hz), float(high_hz), sr)
    sos = sos.copy()  # scipy wants a writeable array
    # Edge padding of about three filter lengths, like scipy's default, capped so short clips still filter.
    padlen = min(x.size - 1, 3 * (2 * sos.shape[0] + 1))
    y = _zero_phase(sos, zi, x, padlen)
    if sr > TELEPHONE_RATE:
        common = math.gcd(sr, TELEPHONE_RATE)
        narrow = sps.resample_poly(y, TELEPHONE_RATE // common, sr // common)
        # Both legs round their length up, so the round trip is never shorter than the clip.
        y = sps.resample_poly(narrow, sr // common, TELEPHONE_RATE // common)[: x.size]
    return mu_law_expand(mu_law_quantize(y, mu_law_bits), mu_law_bits)
