"""augment.functional: exact SNRs, telephone band and quantization, lengths, gains, clipping."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import signal as sps

from augment import functional as F

SR = 8000


def sine(freq: float, amplitude: float = 0.3, n: int = SR, sr: int = SR) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * freq * np.arange(n) / sr)).astype(np.float32)


def power(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.mean(x * x))


def spectrum_db(x: np.ndarray, freq: int) -> float:
    """Level (dB) of the 1-Hz FFT bin at `freq` of a one-second clip."""
    return 20 * math.log10(abs(np.fft.rfft(np.asarray(x, dtype=np.float64))[freq]) + 1e-300)


def test_rms_of_a_sine_is_amplitude_over_root_two():
    assert F.rms(sine(440, amplitude=0.5)) == pytest.approx(0.5 / math.sqrt(2), rel=1e-6)


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 5.0, 12.5, 30.0])
def test_mix_at_snr_hits_the_requested_snr(snr_db):
    signal = sine(440)
    noise = np.random.default_rng(1).normal(0.0, 0.7, SR).astype(np.float32)
    mixed = F.mix_at_snr(signal, noise, snr_db)
    added = mixed.astype(np.float64) - signal
    measured = 10 * math.log10(power(signal) / power(added))
    assert mixed.dtype == np.float32 and mixed.shape == signal.shape
    assert measured == pytest.approx(snr_db, abs=1e-4)


@pytest.mark.parametrize(
    ("signal", "noise", "reason"),
    [
        (np.zeros(100, np.float32), np.ones(100, np.float32), "signal is silent"),
        (np.ones(100, np.float32), np.zeros(100, np.float32), "noise is silent"),
        (np.ones(100, np.float32), np.ones(99, np.float32), "same length"),
        (np.ones(100, np.int16), np.ones(100, np.float32), "floating point"),
    ],
)
def test_mix_at_snr_rejects_what_has_no_snr(signal, noise, reason):
    with pytest.raises(ValueError, match=reason):
        F.mix_at_snr(signal, noise, 5.0)


def test_telephone_keeps_the_band_and_removes_what_is_outside():
    clip = sine(100) + sine(1000) + sine(3800)
    out = F.telephone(clip, SR, 300, 3400, 8)
    assert out.shape == clip.shape and out.dtype == np.float32
    in_band = spectrum_db(out, 1000)
    assert in_band == pytest.approx(spectrum_db(clip, 1000), abs=0.5)
    assert spectrum_db(out, 100) < in_band - 40
    assert spectrum_db(out, 3800) < in_band - 40


def test_telephone_leaves_under_one_percent_of_white_noise_outside_the_band():
    noise = np.random.default_rng(2).normal(0.0, 0.1, SR).astype(np.float32)
    out = F.telephone(noise, SR, 300, 3400, 8)
    energy = np.abs(np.fft.rfft(out.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(SR, 1 / SR)
    outside = (freqs < 300) | (freqs > 3400)
    assert energy[outside].sum() / energy.sum() < 0.01


@pytest.mark.parametrize("bits", [3, 4, 8])
def test_telephone_output_has_at_most_two_to_the_bits_levels(bits):
    clip = sine(440, amplitude=0.9) + np.random.default_rng(3).normal(0, 0.05, SR).astype(np.float32)
    out = F.telephone(clip, SR, 300, 3400, bits)
    assert len(np.unique(out)) <= 2**bits
    assert len(np.unique(F.mu_law_quantize(out, bits))) == len(np.unique(out))


def test_mu_law_round_trip_is_close_and_keeps_silence_at_zero():
    x = np.linspace(-1, 1, 1001, dtype=np.float32)
    codes = F.mu_law_quantize(x, 8)
    assert codes.min() == -127 and codes.max() == 127
    back = F.mu_law_expand(codes, 8)
    # Half the widest step, which is at full scale: (ln 256 * 256 / 255) / 127 / 2 = 0.022.
    assert np.max(np.abs(back - x)) < 0.023
    assert F.mu_law_expand(F.mu_law_quantize(np.zeros(4, np.float32), 8), 8).tolist() == [0.0] * 4


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3000), st.integers(0, 2**32 - 1), st.sampled_from([8000, 16000]))
@example(1, 0, 8000)  # padlen 0: no extension
@example(2, 0, 8000)  # padlen 1
def test_telephone_band_pass_is_scipys_zero_phase_filter_bit_for_bit(n, seed, sr):
    sos, zi = F._bandpass(300.0, 3400.0, sr)
    x = np.random.default_rng(seed).normal(0, 0.3, n)
    padlen = min(n - 1, 3 * (2 * sos.shape[0] + 1))
    expected = sps.sosfiltfilt(sos.copy(), x, padlen=padlen)
    assert np.array_equal(F._zero_phase(sos.copy(), zi, x, padlen), expected)


@pytest.mark.parametrize("sr", [16000, 44100])
def test_telephone_resamples_wide_band_audio_and_keeps_its_length(sr):
    clip = sine(1000, n=sr // 2, sr=sr) + sine(6000, n=sr // 2, sr=sr)
    out = F.telephone(clip, sr, 300, 3400, 16)
    assert out.shape == clip.shape
    spectrum = np.abs(np.fft.rfft(out.astype(np.float64)))
    freqs = np.fft.rfftfreq(out.size, 1 / sr)
    assert spectrum[freqs > 4000].max() < 1e-3 * spectrum.max()


@pytest.mark.parametrize(
    ("sr", "low", "high", "bits", "reason"),
    [
        (8000, 300, 4000, 8, "high_hz < 4000"),
        (16000, 300, 5000, 8, "high_hz < 4000"),
        (8000, 3400, 300, 8, "low_hz < high_hz"),
        (8000, 300, 3400, 1, "bits must be an integer in"),
        (8000, 300, 3400, 8.0, "bits must be an integer in"),
    ],
)
def test_telephone_rejects_impossible_settings(sr, low, high, bits, reason):
    with pytest.raises(ValueError, match=reason):
        F.telephone(sine(440), sr, low, high, bits)


def test_gain_db_scales_amplitude():
    x = sine(440)
    np.testing.assert_allclose(F.gain_db(x, 20 * math.log10(2)), 2 * x, rtol=1e-6)
    np.testing.assert_allclose(F.gain_db(x, -20.0), x / 10, rtol=1e-6)


def test_fit_length_reads_cyclically_from_the_offset():
    noise = np.arange(5, dtype=np.float32)
    assert F.fit_length(noise, 12, 3).tolist() == [3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4]
    assert F.fit_length(noise, 2, 0).tolist() == [0, 1]
    assert F.fit_length(noise, 2, 3).tolist() == [3, 4]  # up to the end: a slice
    assert F.fit_length(noise, 3, 3).tolist() == [3, 4, 0]  # one past it: wraps
    out = F.fit_length(np.arange(5, dtype=np.float64) + 0.1, 2, 1)
    assert out.dtype == np.float32 and out.tolist() == np.array([1.1, 2.1], np.float32).tolist()
    with pytest.raises(ValueError, match="offset must be in"):
        F.fit_length(noise, 3, 5)


def test_prevent_clipping_rescales_only_clipping_clips():
    loud = np.array([0.5, -2.0, 1.0], np.float32)
    out, scale = F.prevent_clipping(loud)
    assert scale == pytest.approx(0.99 / 2.0)
    assert np.max(np.abs(out)) == pytest.approx(0.99)
    quiet = np.array([0.5, -1.0, 0.25], np.float32)
    out, scale = F.prevent_clipping(quiet)
    assert scale == 1.0 and np.array_equal(out, quiet) and out is not quiet and out.dtype == np.float32
    wide = np.array([0.5, -1.0, 1e-30], np.float64)  # float64 input: float32 out, as scale_samples gives it
    assert np.array_equal(F.prevent_clipping(wide)[0], F.scale_samples(wide, 1.0))
    broken = np.array([0.5, np.nan], np.float32)  # no peak to compare: passed unscaled, as scale_samples(x, 1)
    out, scale = F.prevent_clipping(broken)
    assert scale == 1.0 and np.array_equal(out, broken, equal_nan=True)
