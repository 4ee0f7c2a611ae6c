"""Per-file probe and checks: each rule on small files made here, the bad-input corpus, and the probe's
contract (one read, no exceptions on bad bytes, deterministic, serial = parallel)."""

import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from curation.checks.audio import (
    ChannelsCheck,
    ClippingCheck,
    DurationCheck,
    NonfiniteCheck,
    SampleFormatCheck,
    SampleRateCheck,
    SilenceCheck,
)
from curation.checks.decode import DecodeCheck, measured_rows, percent
from curation.checks.findings import Context, Finding, ReadinessError, build_checks
from curation.checks.image import (
    BlurryCheck,
    DarkCheck,
    ImageModeCheck,
    LowInformationCheck,
    OddSizeCheck,
    OverexposedCheck,
)
from curation.checks.probe import PROBE_COLUMNS, probe_file, probe_files
from tests.corpus import CLEAN, RATE, bomb_png, image_bytes, noise_image, tone, wav_bytes, write_corpus

AUDIO = Context("audio", {"sample_rate": RATE})
IMAGE = Context("image", {"channels": 1})


def _table(tmp_path: Path, files: dict[str, bytes], modality: str) -> pd.DataFrame:
    """Write `files` and probe them: the table the checks see (id = path = file name)."""
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    table = probe_files([tmp_path / n for n in files], modality, {})
    table.insert(0, "path", list(files))
    table.insert(0, "id", list(files))
    return table


def _reasons(findings: list[Finding]) -> dict[str, tuple[str, str]]:
    """{id: (severity, reason)} of findings (one per id in these tests)."""
    return {f.id: (f.severity, f.reason) for f in findings}


def _png(pixels: np.ndarray) -> bytes:
    return image_bytes(Image.fromarray(pixels))


# ---- probe: audio -----------------------------------------------------------------------------------------


def test_probe_audio_measures_native_file(tmp_path):
    samples = tone(seconds=0.5, sample_rate=16000)
    path = tmp_path / "a.wav"
    path.write_bytes(wav_bytes(samples, 16000))
    row = probe_file(path, "audio", {"sample_rate": RATE})
    assert set(row) == set(PROBE_COLUMNS["common"] + PROBE_COLUMNS["audio"])
    assert row["decode_error"] == "" and len(row["sha256"]) == 64 and len(row["content_hash"]) == 32
    assert len(row["fingerprint"]) == 16
    assert (row["sample_rate"], row["channels"], row["subtype"], row["seconds"]) == (16000, 1, "PCM_16", 0.5)
    assert row["nonfinite_share"] == 0.0 and row["silence_share"] == 0.0 and row["clipping_share"] == 0.0
    assert row["peak_dbfs"] == pytest.approx(-6.02, abs=0.01)  # 0.5 full scale
    assert row["rms_dbfs"] == pytest.approx(-9.03, abs=0.01)  # a sine's RMS is peak / sqrt(2)


@pytest.mark.parametrize(
    ("subtype", "channels", "fmt"),
    [("PCM_16", 2, "WAV"), ("PCM_24", 1, "WAV"), ("FLOAT", 1, "WAV"), ("PCM_U8", 1, "WAV"), ("PCM_S8", 1, "AIFF")],
)
def test_probe_audio_reads_formats(tmp_path, subtype, channels, fmt):
    samples = np.stack([tone()] * channels, axis=1) if channels > 1 else tone()
    sf.write(tmp_path / "a", samples, RATE, subtype=subtype, format=fmt)
    row = probe_file(tmp_path / "a", "audio", {})
    assert (row["decode_error"], row["subtype"], row["channels"], row["seconds"]) == ("", subtype, channels, 1.0)


def test_probe_audio_same_samples_same_content_hash(tmp_path):
    pcm = np.round(tone() * 32767).astype(np.int16)  # integers: both encoders store them as they are
    sf.write(tmp_path / "a.wav", pcm, RATE, subtype="PCM_16")
    sf.write(tmp_path / "a.flac", pcm, RATE, subtype="PCM_16")
    wav, flac = probe_file(tmp_path / "a.wav", "audio", {}), probe_file(tmp_path / "a.flac", "audio", {})
    assert wav["sha256"] != flac["sha256"]
    assert (wav["content_hash"], wav["fingerprint"]) == (flac["content_hash"], flac["fingerprint"])


def test_probe_audio_nan_measured_on_finite_data(tmp_path):
    samples = tone()
    samples[:40] = np.nan
    samples[40:50] = np.inf
    (tmp_path / "nan.wav").write_bytes(wav_bytes(samples, subtype="FLOAT"))
    row = probe_file(tmp_path / "nan.wav", "audio", {})
    assert row["decode_error"] == "" and row["nonfinite_share"] == 50 / RATE
    assert all(np.isfinite(row[c]) for c in ("silence_share", "clipping_share", "peak_dbfs", "rms_dbfs"))
    assert row["peak_dbfs"] == pytest.approx(-6.02, abs=0.01)  # the infinities do not count as peaks


def test_probe_audio_silence_is_share_of_digitally_silent_samples(tmp_path):
    samples = tone()
    samples[:5840] = 0.00005  # -86 dBFS: digital silence
    samples[5840:5920] = 0.0005  # -66 dBFS: a quiet room, not silence
    (tmp_path / "s.wav").write_bytes(wav_bytes(samples, subtype="FLOAT"))
    assert probe_file(tmp_path / "s.wav", "audio", {})["silence_share"] == 0.73


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file (0 bytes)"),
        (b"this is not audio\n", "not an audio file: starts with text 'this is not audio'"),
        (
            bytes(range(200, 256)),
            "cannot decode audio: Format not recognised. (starts with bytes c8 c9 ca cb cc cd ce cf)",
        ),
    ],
)
def test_probe_audio_decode_errors(tmp_path, data, reason):
    (tmp_path / "x.wav").write_bytes(data)
    row = probe_file(tmp_path / "x.wav", "audio", {})
    assert row["decode_error"] == reason
    assert row["content_hash"] is None and row["sample_rate"] is None and np.isnan(row["seconds"])


def test_probe_audio_truncated_wav(tmp_path):
    data = wav_bytes(tone())  # 8000 16-bit samples: a 16000-byte data chunk after a 44-byte header
    (tmp_path / "cut.wav").write_bytes(data[:8044])
    (tmp_path / "head.wav").write_bytes(data[:30])
    (tmp_path / "bare.wav").write_bytes(data[:44])
    cut, head = probe_file(tmp_path / "cut.wav", "audio", {}), probe_file(tmp_path / "head.wav", "audio", {})
    assert cut["decode_error"] == "truncated audio: the WAV data chunk declares 16000 bytes, 8000 are there"
    assert head["decode_error"].startswith("cannot decode audio: Error in WAV file. No 'data' chunk marker.")
    assert probe_file(tmp_path / "bare.wav", "audio", {})["decode_error"].startswith("truncated audio:")


def test_probe_header_only_wav_has_no_samples(tmp_path):
    (tmp_path / "none.wav").write_bytes(wav_bytes(np.zeros(0, dtype=np.float32)))
    assert probe_file(tmp_path / "none.wav", "audio", {})["decode_error"] == "audio has no samples (header only)"


def test_probe_unreadable_path_and_bad_modality(tmp_path):
    assert probe_file(tmp_path, "audio", {})["decode_error"] == "cannot read: Is a directory"
    with pytest.raises(ValueError, match="unknown modality 'video'"):
        probe_file(tmp_path, "video", {})


# ---- probe: images ----------------------------------------------------------------------------------------


def test_probe_image_measures_grey(tmp_path):
    pixels = np.zeros((40, 50), dtype=np.uint8)
    pixels[:, :25] = 255  # half black, half white
    (tmp_path / "a.png").write_bytes(_png(pixels))
    row = probe_file(tmp_path / "a.png", "image", {})
    assert set(row) == set(PROBE_COLUMNS["common"] + PROBE_COLUMNS["image"])
    assert (row["format"], row["mode"], row["width"], row["height"]) == ("PNG", "L", 50, 40)
    assert (row["brightness"], row["dark_share"], row["overexposed_share"], row["entropy"]) == (0.5, 0.5, 0.5, 1.0)
    assert row["blur"] > 1000  # one hard edge


def test_probe_image_same_pixels_same_content_hash(tmp_path):
    pixels = noise_image(0)
    (tmp_path / "a.png").write_bytes(_png(pixels))
    (tmp_path / "a.bmp").write_bytes(image_bytes(Image.fromarray(pixels), "BMP"))
    (tmp_path / "b.png").write_bytes(_png(pixels[::-1].copy()))
    a, bmp, b = (probe_file(tmp_path / n, "image", {}) for n in ("a.png", "a.bmp", "b.png"))
    assert a["sha256"] != bmp["sha256"] and a["content_hash"] == bmp["content_hash"]
    assert b["content_hash"] != a["content_hash"]


def test_probe_image_16_bit_scaled_by_bit_depth(tmp_path):
    pixels = np.full((16, 16), 32768, dtype=np.uint16)  # mid grey in 16 bits; clipping would make it white
    (tmp_path / "g.png").write_bytes(_png(pixels))
    row = probe_file(tmp_path / "g.png", "image", {})
    assert row["mode"] == "I;16" and row["brightness"] == 128 / 255 and row["overexposed_share"] == 0.0


def test_probe_image_modes(tmp_path):
    rgb = np.dstack([noise_image(1), noise_image(2), noise_image(3)])
    rgba = np.dstack([rgb, np.zeros((64, 64), np.uint8)])  # fully transparent: alpha is dropped, not composited
    files = {
        "rgba.png": image_bytes(Image.fromarray(rgba, mode="RGBA")),
        "rgb.png": image_bytes(Image.fromarray(rgb)),
        "cmyk.jpg": image_bytes(Image.fromarray(np.dstack([rgb, rgb[..., :1]]), mode="CMYK"), "JPEG"),
        "p.png": image_bytes(Image.fromarray(rgb).convert("P")),
        "la.png": image_bytes(Image.fromarray(np.dstack([noise_image(4), noise_image(5)]), mode="LA")),
        "one.png": image_bytes(Image.fromarray(noise_image(6) > 128)),
    }
    table = _table(tmp_path, files, "image")
    assert list(table["mode"]) == ["RGBA", "RGB", "CMYK", "P", "LA", "1"]
    assert list(table["format"]) == ["PNG", "PNG", "JPEG", "PNG", "PNG", "PNG"]
    assert (table["decode_error"] == "").all()
    assert table.loc[0, "brightness"] == table.loc[1, "brightness"]
    assert table.loc[5, "entropy"] == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("e.png", b"", "empty file (0 bytes)"),
        ("t.png", b"hello, world", "not an image file: starts with text 'hello, world'"),
        ("b.png", bytes([0, 1, 2, 250]), "unknown or damaged image format: starts with bytes 00 01 02 fa"),
        ("bomb.png", bomb_png(20000, 20000), "image header claims 400000000 pixels, over 50000000"),
        ("big.png", bomb_png(8000, 8000), "image header claims 8000x8000 pixels, over 50000000"),
        ("warned.png", bomb_png(10000, 10000), "image header claims 100000000 pixels, over 50000000"),
    ],
)
def test_probe_image_decode_errors(tmp_path, name, data, reason):
    (tmp_path / name).write_bytes(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        row = probe_file(tmp_path / name, "image", {})
    assert row["decode_error"] == reason and not caught  # PIL's bomb warning does not escape
    assert row["width"] is None and row["mode"] is None and np.isnan(row["brightness"])


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_probe_image_truncated(tmp_path, fmt):
    data = image_bytes(Image.fromarray(noise_image(0)), fmt)
    (tmp_path / "cut").write_bytes(data[: len(data) // 2])
    assert probe_file(tmp_path / "cut", "image", {})["decode_error"].startswith(
        "truncated image: image file is truncated"
    )


# ---- probe_files -----------------------------------------------------------------------------------------


def test_probe_files_rows_in_order_with_unresolved_paths(tmp_path):
    (tmp_path / "a.wav").write_bytes(wav_bytes(tone()))
    (tmp_path / "b.wav").write_bytes(b"")
    table = probe_files([tmp_path / "a.wav", None, tmp_path / "b.wav"], "audio", {})
    assert list(table.columns) == list(PROBE_COLUMNS["common"] + PROBE_COLUMNS["audio"])
    assert list(table["decode_error"]) == ["", "", "empty file (0 bytes)"]
    assert table["sha256"].isna().tolist() == [False, True, False]
    assert str(table["sample_rate"].dtype) == "Int64" and table["sample_rate"].tolist()[:2] == [RATE, pd.NA]
    assert table["seconds"].isna().tolist() == [False, True, True]


def test_probe_files_parallel_equals_serial(tmp_path):
    expected = write_corpus(tmp_path, "image")
    paths = [tmp_path / n for n in expected] + [None]
    serial = probe_files(paths, "image", {})
    parallel = probe_files(paths, "image", {}, workers=2)
    pd.testing.assert_frame_equal(serial, parallel, check_exact=True)
    assert serial.to_csv() == parallel.to_csv()
    with pytest.raises(ValueError, match="workers must be at least 1"):
        probe_files(paths, "image", {}, workers=0)
    with pytest.raises(ValueError, match="unknown modality 'text'"):
        probe_files([], "text", {})
    assert list(probe_files([], "image", {}).columns) == list(serial.columns)


# ---- the corpus --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("modality", "media"), [("audio", {"sample_rate": RATE}), ("image", {"channels": 1})])
def test_corpus_each_file_reported_by_its_check(tmp_path, modality, media):
    expected = write_corpus(tmp_path, modality)
    table = probe_files([tmp_path / n for n in expected], modality, media)
    table.insert(0, "path", list(expected))
    table.insert(0, "id", list(expected))
    found: dict[str, set[str]] = {}
    for check in build_checks(modality, {}, only=("decode", *_per_file_checks(modality))):
        for f in check.find_issues(table, Context(modality, media)):
            found.setdefault(f.id, set()).add(f.check)
    for name, check in expected.items():
        if check == CLEAN:
            assert name not in found, (name, found.get(name))
        else:
            assert check in found.get(name, set()), (name, found.get(name))


def _per_file_checks(modality: str) -> tuple[str, ...]:
    if modality == "audio":
        return ("nonfinite", "silence", "clipping", "sample_rate", "channels", "sample_format", "duration")
    return ("dark", "overexposed", "blurry", "low_information", "odd_size", "image_mode")


# ---- checks: shared ---------------------------------------------------------------------------------------


def test_decode_check_reports_decode_error_only():
    table = pd.DataFrame(
        {"id": ["a", "b", "c"], "path": ["a", "b", "c"], "decode_error": ["", "empty file (0 bytes)", np.nan]}
    )
    assert _reasons(DecodeCheck().find_issues(table, AUDIO)) == {"b": ("error", "empty file (0 bytes)")}


def test_measured_rows_skip_unread_and_undecoded():
    table = pd.DataFrame({"id": list("abc"), "sha256": ["x", None, "y"], "decode_error": ["", "", "bad"]})
    assert [r["id"] for r in measured_rows(table)] == ["a"]


def test_percent():
    assert [percent(x) for x in (0.73, 0.3, 0.005, 0.0025, 0.001, 0.0, 1.0, 1e-9)] == [
        "73%",
        "30%",
        "0.5%",
        "0.25%",
        "0.1%",
        "0%",
        "100%",
        "<0.001%",
    ]


# ---- checks: audio ----------------------------------------------------------------------------------------


def test_nonfinite_check(tmp_path):
    nan = tone()
    nan[:40] = np.nan
    table = _table(tmp_path, {"ok.wav": wav_bytes(tone()), "nan.wav": wav_bytes(nan, subtype="FLOAT")}, "audio")
    [finding] = NonfiniteCheck().find_issues(table, AUDIO)
    assert (finding.id, finding.severity) == ("nan.wav", "error")
    assert finding.reason == "audio contains 40 NaN or infinite samples (0.5%)" and finding.score == 0.995


def test_silence_check(tmp_path):
    mostly = tone()
    mostly[: 73 * 80] = 0.0
    files = {
        "ok.wav": wav_bytes(tone()),
        "mostly.wav": wav_bytes(mostly),
        "silent.wav": wav_bytes(np.zeros(RATE, np.float32)),
    }
    table = _table(tmp_path, files, "audio")
    assert _reasons(SilenceCheck().find_issues(table, AUDIO)) == {
        "mostly.wav": ("warning", "73% of the clip is digital silence (below -80 dBFS), over 30%"),
        "silent.wav": (
            "error",
            "100% of the clip is digital silence (below -80 dBFS), over 30%; at or over error_share 100%, an error",
        ),
    }
    assert _reasons(SilenceCheck(error_share=None, max_share=0.8).find_issues(table, AUDIO)) == {
        "silent.wav": ("warning", "100% of the clip is digital silence (below -80 dBFS), over 80%"),
    }
    assert [f.severity for f in SilenceCheck(severity="info", error_share=0.7).find_issues(table, AUDIO)] == [
        "error",
        "error",
    ]


def test_clipping_check(tmp_path):
    clipped = tone()
    clipped[100:120] = 1.0
    table = _table(tmp_path, {"ok.wav": wav_bytes(tone()), "clip.wav": wav_bytes(clipped)}, "audio")
    assert _reasons(ClippingCheck().find_issues(table, AUDIO)) == {
        "clip.wav": ("warning", "0.25% of samples are clipped (|x| >= 0.999), over 0.1%")
    }
    assert ClippingCheck(max_share=0.01).find_issues(table, AUDIO) == []


def test_sample_rate_check(tmp_path):
    files = {"ok.wav": wav_bytes(tone()), "16k.wav": wav_bytes(tone(sample_rate=16000), 16000)}
    table = _table(tmp_path, files, "audio")
    assert _reasons(SampleRateCheck().find_issues(table, AUDIO)) == {
        "16k.wav": ("warning", "sample rate 16000 Hz, resampled to 8000 Hz")
    }
    [rejected] = SampleRateCheck(action="reject").find_issues(table, AUDIO)
    assert (rejected.severity, rejected.reason, rejected.score) == (
        "error",
        "sample rate 16000 Hz, expected 8000 Hz",
        0,
    )
    with pytest.raises(ReadinessError, match="action 'drop' is not one of"):
        SampleRateCheck(action="drop")
    with pytest.raises(ReadinessError, match="no sample_rate"):
        SampleRateCheck().find_issues(table, Context("audio", {}))


def test_channels_check(tmp_path):
    stereo = np.stack([tone(), tone(freq=660.0)], axis=1)
    table = _table(tmp_path, {"mono.wav": wav_bytes(tone()), "stereo.wav": wav_bytes(stereo)}, "audio")
    assert _reasons(ChannelsCheck().find_issues(table, AUDIO)) == {
        "stereo.wav": ("warning", "2 channels, mixed down to mono")
    }
    assert _reasons(ChannelsCheck(action="reject").find_issues(table, AUDIO)) == {
        "stereo.wav": ("error", "2 channels, expected 1")
    }
    with pytest.raises(ReadinessError, match="action 'keep'"):
        build_checks("audio", {"channels": {"action": "keep"}})


def test_sample_format_check(tmp_path):
    files = {
        "16.wav": wav_bytes(tone()),
        "24.wav": wav_bytes(tone(), subtype="PCM_24"),
        "f.wav": wav_bytes(tone(), subtype="FLOAT"),
        "u8.wav": wav_bytes(tone(), subtype="PCM_U8"),
    }
    table = _table(tmp_path, files, "audio")
    assert _reasons(SampleFormatCheck().find_issues(table, AUDIO)) == {
        "24.wav": ("info", "24-bit PCM (PCM_24)"),
        "f.wav": ("info", "32-bit float (FLOAT)"),
        "u8.wav": ("info", "8-bit unsigned PCM (PCM_U8)"),
    }
    assert set(_reasons(SampleFormatCheck(expected=["PCM_16", "PCM_24"]).find_issues(table, AUDIO))) == {
        "f.wav",
        "u8.wav",
    }


def test_duration_check(tmp_path):
    files = {"short.wav": wav_bytes(tone(0.25)), "ok.wav": wav_bytes(tone(1.0)), "long.wav": wav_bytes(tone(3.0))}
    table = _table(tmp_path, files, "audio")
    assert DurationCheck().find_issues(table, AUDIO) == []
    assert _reasons(DurationCheck(min_seconds=0.5, max_seconds=2).find_issues(table, AUDIO)) == {
        "short.wav": ("error", "0.250 s long, shorter than the minimum 0.5 s"),
        "long.wav": ("error", "3.000 s long, longer than the maximum 2 s"),
    }


def test_audio_checks_skip_unmeasured_rows(tmp_path):
    files = {"empty.wav": b"", "text.wav": b"not audio"}
    table = _table(tmp_path, files, "audio")
    table.loc[len(table)] = {"id": "gone", "path": "gone.wav", "decode_error": ""}
    every = build_checks("audio", {"duration": {"min_seconds": 10}}, only=("decode", *_per_file_checks("audio")))
    findings = [f for check in every for f in check.find_issues(table, AUDIO)]
    assert {(f.id, f.check) for f in findings} == {("empty.wav", "decode"), ("text.wav", "decode")}


# ---- checks: images ---------------------------------------------------------------------------------------


def test_dark_check(tmp_path):
    dark = np.full((64, 64), 10, dtype=np.uint8)
    dark[:, 32:] = 50  # mean 30 of 255, half the pixels below 0.1
    table = _table(tmp_path, {"ok.png": _png(noise_image(0)), "dark.png": _png(dark)}, "image")
    [finding] = DarkCheck().find_issues(table, IMAGE)
    assert (finding.id, finding.severity) == ("dark.png", "warning")
    assert finding.reason == "mean brightness 0.118 (50% of pixels below 0.1), below 0.15"
    assert finding.score == pytest.approx(30 / 255 / 0.15)


def test_overexposed_check(tmp_path):
    white = np.full((64, 64), 255, dtype=np.uint8)
    white[:16] = 100
    table = _table(tmp_path, {"ok.png": _png(noise_image(0)), "white.png": _png(white)}, "image")
    assert _reasons(OverexposedCheck().find_issues(table, IMAGE)) == {
        "white.png": ("warning", "75% of pixels near white (above 0.98), over 50%")
    }


def test_blurry_check(tmp_path):
    flat = np.full((64, 64), 128, dtype=np.uint8)
    table = _table(tmp_path, {"ok.png": _png(noise_image(0)), "flat.png": _png(flat)}, "image")
    assert _reasons(BlurryCheck().find_issues(table, IMAGE)) == {
        "flat.png": ("warning", "sharpness 0.0 (variance of the Laplacian), below 10")
    }


def test_low_information_check(tmp_path):
    stripes = np.full((64, 64), 30, dtype=np.uint8)
    stripes[:, ::2] = 220
    files = {"ok.png": _png(noise_image(0)), "stripes.png": _png(stripes), "flat.png": _png(stripes[:, :1].copy())}
    table = _table(tmp_path, files, "image")
    assert _reasons(LowInformationCheck().find_issues(table, IMAGE)) == {
        "stripes.png": ("warning", "grey-level entropy 1.00 bits, below 2 bits"),
        "flat.png": ("warning", "one flat grey level (entropy 0 bits), below 2 bits"),
    }


def test_quality_rule_typical_of_the_data_set_is_info(tmp_path):
    # line art: 24 two-level images (1 bit of entropy each) and one blank page
    files = {}
    for k in range(24):
        pixels = np.full((64, 64), 255, dtype=np.uint8)
        pixels[k : k + 32, 10:42] = 0
        files[f"{k}.png"] = _png(pixels)
    files["blank.png"] = _png(np.full((64, 64), 255, dtype=np.uint8))
    table = _table(tmp_path, files, "image")
    findings = {f.id: f for f in LowInformationCheck().find_issues(table, IMAGE)}
    assert len(findings) == 25 and findings["blank.png"].severity == "warning"
    assert findings["0.png"].severity == "info"
    assert findings["0.png"].reason == (
        "grey-level entropy 0.81 bits, below 2 bits (25 of 25 images are, over max_prevalence 50%: typical of"
        " this data set, so info)"
    )
    assert {f.severity for f in LowInformationCheck(max_prevalence=1.0).find_issues(table, IMAGE)} == {"warning"}


def test_odd_size_check(tmp_path):
    files = {f"ok{k}.png": _png(noise_image(k)) for k in range(3)}
    files["tiny.png"] = _png(noise_image(5, (4, 4)))
    files["long.png"] = _png(noise_image(6, (32, 256)))
    files["huge.png"] = _png(noise_image(7, (256, 256)))
    table = _table(tmp_path, files, "image")
    assert _reasons(OddSizeCheck().find_issues(table, IMAGE)) == {
        "tiny.png": (
            "warning",
            "4x4 pixels: a side under 8 pixels; area 1/256 of the data set's median 4096 pixels, beyond 10x",
        ),
        "long.png": ("warning", "256x32 pixels: aspect ratio 8.0, over 4"),
        "huge.png": ("warning", "256x256 pixels: area 16x the data set's median 4096 pixels, beyond 10x"),
    }
    assert OddSizeCheck(min_side=2, max_aspect=10, max_area_ratio=300).find_issues(table, IMAGE) == []


def test_image_mode_check(tmp_path):
    rgba = np.dstack([noise_image(1)] * 3 + [np.full((64, 64), 128, np.uint8)])
    files = {
        "l.png": _png(noise_image(0)),
        "rgb.png": _png(np.dstack([noise_image(2)] * 3)),
        "rgba.png": image_bytes(Image.fromarray(rgba, mode="RGBA")),
        "g16.png": _png(noise_image(3).astype(np.uint16) * 257),
        "cmyk.jpg": image_bytes(Image.fromarray(np.dstack([noise_image(4)] * 4), mode="CMYK"), "JPEG"),
        "p.png": image_bytes(Image.fromarray(noise_image(5)).convert("P")),
    }
    table = _table(tmp_path, files, "image")
    assert _reasons(ImageModeCheck().find_issues(table, IMAGE)) == {
        "rgba.png": ("warning", "mode RGBA (with alpha), converted to L"),
        "g16.png": ("warning", "mode I;16 (16-bit grey), converted to L"),
        "cmyk.jpg": ("warning", "mode CMYK (CMYK colour), converted to L"),
        "p.png": ("warning", "mode P (palette), converted to L"),
    }
    rgb_media = Context("image", {"channels": 3})
    assert _reasons(ImageModeCheck(action="reject", expected=["L", "RGB", "P"]).find_issues(table, rgb_media)) == {
        "rgba.png": ("error", "mode RGBA (with alpha), not one of ['L', 'RGB', 'P']"),
        "g16.png": ("error", "mode I;16 (16-bit grey), not one of ['L', 'RGB', 'P']"),
        "cmyk.jpg": ("error", "mode CMYK (CMYK colour), not one of ['L', 'RGB', 'P']"),
    }
    assert ImageModeCheck().find_issues(table, rgb_media)[0].reason == "mode RGBA (with alpha), converted to RGB"
    with pytest.raises(ReadinessError, match="unknown setting 'actions'"):
        ImageModeCheck(actions="x")


# ---- properties -------------------------------------------------------------------------------------------

_WAV = wav_bytes(tone(0.05))
_PNG = _png(noise_image(0, (8, 8)))
_JUNK = st.one_of(
    st.binary(max_size=600),
    st.builds(lambda cut, tail: _WAV[:cut] + tail, st.integers(0, len(_WAV)), st.binary(max_size=200)),
    st.builds(lambda cut, tail: _PNG[:cut] + tail, st.integers(0, len(_PNG)), st.binary(max_size=200)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_JUNK, suffix=st.sampled_from([".wav", ".png"]))
def test_probe_never_raises_and_is_deterministic(data, suffix):
    modality = "audio" if suffix == ".wav" else "image"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"x{suffix}"
        path.write_bytes(data)
        first, second = probe_file(path, modality, {}), probe_file(path, modality, {})
    assert repr(first) == repr(second)
    assert isinstance(first["decode_error"], str) and len(first["sha256"]) == 64
    assert (first["content_hash"] is None) == bool(first["decode_error"])


def test_degenerate_fingerprints_are_left_empty(tmp_path):
    """Silence and a flat image hash to all zeros: no fingerprint, so they never pair as near duplicates."""
    (tmp_path / "s.wav").write_bytes(wav_bytes(np.zeros(8000, dtype=np.float32)))
    (tmp_path / "f.png").write_bytes(image_bytes(Image.new("L", (32, 32), 128)))
    assert probe_file(tmp_path / "s.wav", "audio", {})["fingerprint"] == ""
    assert probe_file(tmp_path / "f.png", "image", {})["fingerprint"] == ""
    assert probe_file(tmp_path / "s.wav", "audio", {})["content_hash"] != ""
