"""Features: mel filters peak at their centres, a tone lands in its mel band, files load at a fixed size."""

import numpy as np
import pytest
import torch

from curation.features import (
    load_inputs,
    log_mel,
    media_config,
    mel_centres,
    mel_filterbank,
    to_model_input,
)
from curation.media import MediaError, save_audio, save_image

AUDIO = {"sample_rate": 8000, "seconds": 0.5, "n_fft": 256, "hop": 80, "n_mels": 40}


def _tone(freq: float, seconds: float = 0.5, sr: int = 8000, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_filterbank_shape_and_range():
    fb = mel_filterbank(8000, 256, 40)
    assert fb.shape == (40, 129) and fb.dtype == torch.float32
    assert float(fb.min()) >= 0.0 and float(fb.max()) <= 1.0
    assert bool((fb.sum(dim=1) > 0).all())
    centres = mel_centres(8000, 40)
    assert centres.shape == (40,) and np.all(np.diff(centres) > 0) and centres[0] > 0 and centres[-1] < 4000


def test_each_filter_peaks_at_its_centre():
    # fine FFT grid: the peak is the bin nearest the centre, at (almost) full height
    n_fft, sr = 8192, 8000
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    fb = mel_filterbank(sr, n_fft, 40).numpy()
    nearest = np.abs(freqs[None, :] - mel_centres(sr, 40)[:, None]).argmin(axis=1)
    np.testing.assert_array_equal(fb.argmax(axis=1), nearest)
    assert fb.max(axis=1).min() > 0.97
    # the project's coarse grid: the peak is one of the two bins around the centre
    coarse = mel_filterbank(sr, 256, 40).numpy()
    bin_hz = sr / 256
    peak_hz = coarse.argmax(axis=1) * bin_hz
    assert np.all(np.abs(peak_hz - mel_centres(sr, 40)) < bin_hz)


def test_too_many_mels_for_the_fft_is_refused():
    with pytest.raises(ValueError, match="cover no FFT bin"):
        mel_filterbank(8000, 64, 40)
    with pytest.raises(ValueError, match="n_mels >= 1"):
        mel_filterbank(8000, 256, 0)


def test_log_mel_of_a_tone_peaks_in_its_band():
    x = torch.from_numpy(np.stack([_tone(1000.0), _tone(2500.0)]))
    mel = log_mel(x, 8000, 256, 80, 40)
    assert mel.shape == (2, 40, 1 + 4000 // 80)
    centres = mel_centres(8000, 40)
    for row, freq in zip(mel.mean(dim=2), (1000.0, 2500.0), strict=True):
        assert int(row.argmax()) == int(np.abs(centres - freq).argmin())


def test_log_mel_of_silence_is_the_floor_and_shape_is_checked():
    mel = log_mel(torch.zeros(1, 4000), 8000, 256, 80, 40)
    assert torch.allclose(mel, torch.full_like(mel, float(np.log(1e-6))))
    with pytest.raises(ValueError, match="batch, samples"):
        log_mel(torch.zeros(4000), 8000, 256, 80, 40)


@pytest.mark.parametrize(
    ("batch", "samples", "n_fft", "hop"), [(1, 129, 256, 80), (3, 8000, 256, 80), (2, 301, 400, 160)]
)
def test_log_mel_frames_are_those_of_torch_centred_stft(batch, samples, n_fft, hop):
    x = torch.from_numpy(np.random.default_rng(samples).normal(size=(batch, samples)).astype(np.float32))
    spec = torch.stft(x, n_fft, hop, n_fft, torch.hann_window(n_fft), center=True, pad_mode="reflect",
                      return_complex=True)  # fmt: skip
    power = spec.real.square() + spec.imag.square()
    expected = torch.log(torch.matmul(mel_filterbank(8000, n_fft, 20), power) + 1e-6)
    assert torch.equal(log_mel(x, 8000, n_fft, hop, 20), expected)


def test_log_mel_needs_more_samples_than_half_a_window():
    with pytest.raises(ValueError, match="n_fft // 2 = 128 samples: waveforms need more, got 128"):
        log_mel(torch.zeros(1, 128), 8000, 256, 80, 40)


def test_model_input_is_normalised_per_utterance_and_gain_invariant():
    # tones in a little noise, so that every band sits well above the log floor
    noise = np.random.default_rng(0).normal(0.0, 0.01, size=(2, 4000)).astype(np.float32)
    x = torch.from_numpy(np.stack([_tone(700.0, amp=0.5), _tone(1500.0, amp=0.05)]) + noise)
    z = to_model_input(x, "audio", {"audio": AUDIO})
    assert z.shape == (2, 1, 40, 51)
    assert torch.allclose(z.mean(dim=(1, 2, 3)), torch.zeros(2), atol=1e-5)
    assert torch.allclose(z.std(dim=(1, 2, 3), unbiased=False), torch.ones(2), atol=1e-3)
    louder = to_model_input(x * 1.5, "audio", {"media": AUDIO})
    assert torch.allclose(z, louder, atol=1e-3)
    image = torch.rand(2, 1, 8, 8)
    assert to_model_input(image, "image", {}) is image


def test_media_config_lookup():
    assert media_config({"audio": AUDIO}, "audio") is AUDIO
    assert media_config({"media": AUDIO, "lr": 0.1}, "audio") is AUDIO
    with pytest.raises(ValueError, match="no image settings"):
        media_config({"lr": 0.1}, "image")
    with pytest.raises(ValueError, match="unknown modality"):
        media_config({"media": AUDIO}, "video")


def test_load_images_grey_resized_and_rgb(tmp_path):
    a = (np.arange(64, dtype=np.uint8).reshape(8, 8) * 4).astype(np.uint8)
    save_image(tmp_path / "a.png", a)
    save_image(tmp_path / "b.png", np.full((20, 12), 200, dtype=np.uint8))
    x = load_inputs([str(tmp_path / "a.png"), str(tmp_path / "b.png")], "image", {"image": {"size": 8, "channels": 1}})
    assert x.shape == (2, 1, 8, 8) and x.dtype == torch.float32
    np.testing.assert_allclose(x[0, 0].numpy(), a / 255.0, atol=1e-7)
    np.testing.assert_allclose(x[1].numpy(), 200 / 255.0, atol=1e-6)  # a flat image stays flat when resized
    rgb = np.zeros((8, 8, 3), dtype=np.uint8)
    rgb[..., 2] = 255
    save_image(tmp_path / "c.png", rgb)
    y = load_inputs([str(tmp_path / "c.png")], "image", {"media": {"size": 8, "channels": 3}})
    assert y.shape == (1, 3, 8, 8)
    np.testing.assert_allclose(y[0].mean(dim=(1, 2)).numpy(), [0.0, 0.0, 1.0])


def test_load_audio_crops_to_the_loudest_window_and_pads(tmp_path):
    ramp = np.linspace(0.0, 0.5, 6000).astype(np.float32)  # louder towards the end
    save_audio(tmp_path / "long.wav", ramp, 8000)
    save_audio(tmp_path / "short.wav", np.full(1000, 0.25, dtype=np.float32), 8000)
    x = load_inputs([str(tmp_path / "long.wav"), str(tmp_path / "short.wav")], "audio", {"audio": AUDIO})
    assert x.shape == (2, 4000) and x.dtype == torch.float32
    np.testing.assert_allclose(x[0].numpy(), ramp[2000:6000], atol=1 / 32768 + 1e-6)
    short = x[1].numpy()
    assert np.all(short[:1500] == 0) and np.all(short[2500:] == 0)
    np.testing.assert_allclose(short[1500:2500], 0.25, atol=1 / 32768 + 1e-6)


def test_media_errors_name_the_file(tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(MediaError, match=r"broken\.wav"):
        load_inputs([str(bad)], "audio", {"audio": AUDIO})
    with pytest.raises(MediaError, match=r"missing\.png"):
        load_inputs([str(tmp_path / "missing.png")], "image", {"image": {"size": 8, "channels": 1}})
    with pytest.raises(ValueError, match="channels must be 1 or 3"):
        load_inputs([], "image", {"image": {"size": 8, "channels": 2}})


def test_long_clips_are_cropped_to_their_loudest_window(tmp_path):
    """A 2 s take whose word is in its first 0.3 s keeps the word (a centre crop would keep silence)."""
    sr = 8000
    x = np.zeros(2 * sr, dtype=np.float32)
    x[400:2400] = 0.5 * np.sin(np.arange(2000) / 3.0)
    save_audio(tmp_path / "early.wav", x, sr)
    wave = load_inputs([str(tmp_path / "early.wav")], "audio", {"audio": {"sample_rate": sr, "seconds": 1.0}})[0]
    assert float((wave**2).sum()) == pytest.approx(float((x.astype(np.float64) ** 2).sum()), rel=1e-3)
    np.testing.assert_allclose(wave.numpy(), x[:sr], atol=1 / 32768 + 1e-6)  # the earliest window holding it all
