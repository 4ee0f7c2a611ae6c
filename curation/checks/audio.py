"""Per-file audio checks, on the probe's measurements (native rate and channels, see `probe.py`).

Each check skips rows the probe could not measure (no file, or a decode error: the path and decode checks
report those). Scores: 1 - the affected share for shares, value/limit for a value beyond a limit, 0.5 for a
sample the pipeline converts (resampled, mixed down) and 0 for one it rejects.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import soundfile as sf

from curation.checks.decode import REJECT, ActionCheck, measured_rows, percent
from curation.checks.findings import Check, Context, Finding, ReadinessError, register
from curation.checks.probe import CLIP_LEVEL, SILENCE_DBFS

SUBTYPE_NAMES = {
    "PCM_S8": "8-bit signed PCM",
    "PCM_U8": "8-bit unsigned PCM",
    "PCM_16": "16-bit PCM",
    "PCM_24": "24-bit PCM",
    "PCM_32": "32-bit PCM",
    "FLOAT": "32-bit float",
    "DOUBLE": "64-bit float",
}


@register
class NonfiniteCheck(Check):
    """NaN or infinite samples (a float file written from broken arithmetic): no model input can hold them."""

    name = "nonfinite"
    severity = "error"
    modalities = ("audio",)

    def find_issues(self, table: pd.DataFrame, ctx: Context) -> list[Finding]:
        out = []
        for row in measured_rows(table):
            share = float(row["nonfinite_share"])
            if share > 0:
                total = round(float(row["seconds"]) * int(row["sample_rate"])) * int(row["channels"])
                reason = f"audio contains {round(share * total)} NaN or infinite samples ({percent(share)})"
                out.append(self.finding(row, reason, 1.0 - share))
        return out


@register
class SilenceCheck(Check):
    """Clips that are mostly digital silence (samples of the mono mix below -80 dBFS), over `max_share`.

    A clip whose silent share reaches `error_share` (default 1.0: entirely silent) is reported as an error
    whatever the check's level, since it holds nothing to learn from; `error_share: null` turns that off.
    """

    name = "silence"
    severity = "warning"
    modalities = ("audio",)
    max_share: float = 0.3
    error_share: float | None = 1.0

    def find_issues(self, table: pd.DataFrame, ctx: Context) -> list[Finding]:
        out = []
        for row in measured_rows(table):
            share = float(row["silence_share"])
            if share <= self.max_share:
                continue
            reason = f"{percent(share)} of the clip is digital silence (below {SILENCE_DBFS:g} dBFS), over "
            reason += percent(self.max_share)
            if self.error_share is not None and share >= self.error_share:
                finding = self.finding(
                    row, f"{reason}; at or over error_share {percent(self.error_share)}, an error", 1.0 - share
                )
                out.append(replace(finding, severity="error"))
            else:
                out.append(self.finding(row, reason, 1.0 - share))
        return out


@register
class ClippingCheck(Check):
    """Clipped samples (|x| at or over 0.999 of full scale), over `max_share` of all samples: distortion."""

    name = "clipping"
    severity = "warning"
    modalities = ("audio",)
    max_share: float = 0.001

    def find_issues(self, table: pd.DataFrame, ctx: Context) -> list[Finding]:
        out = []
        for row in measured_rows(table):
            share = float(row["clipping_share"])
            if share > self.max_share:
                reason = (
                    f"{percent(share)} of samples are clipped (|x| >= {CLIP_LEVEL:g}), over {percent(self.max_share)}"
                )
                out.append(self.finding(row, reason, 1.0 - share))
        return out


@register
class SampleRateCheck(ActionCheck):
    """A native sample rate other than the data set's `media.sample_rate`: `action` resample (a warning: the
    validate stage resamples it) or reject (an error)."""

    name = "sample_rate"
    severity = "warning"
    modalities = ("audio",)
    action = "resample"
    _actions = ("resample", REJECT)

    def find_issues(self, table: pd.DataFrame, ctx: Context) -> list[Finding]:
        if "sample_rate" not in ctx.media:
            raise ReadinessError(f"check {self.name}: the audio media settings have no sample_rate")
        target = int(ctx.media["sample_rate"])
        out = []
        for row in measured_rows(table):
            rate = int(row["sample_rate"])
            if rate != target:
                converted = f"sample rate {rate} Hz, resampled to {target} Hz"
                out.append(self.decided(row, converted, f"sample rate {rate} Hz, expected {target} Hz"))
        return out


@register
class ChannelsCheck(ActionCheck):
    """A channel count other than the data set's `media.channels` (default 1): `action` mix (a warning: the
    channels are averaged to mono when loading) or reject (an error)."""

    name = "channels"
    severity = "warning"
    modalities = ("audio",)
    action = "mix"
    _actions = ("mix", REJECT)

    def find_issues(self, table: pd.DataFrame, ctx: Context) -> list[Finding]:
        expected = int(ctx.media.get("channels", 1))
        out = []
        for row in measured_rows(table):
            channels = int(row["channels"])
            if channels != expected:
                counted = f"{channels} channel{'s' if channels != 1 else ''}"
                out.append(self.decided(row, f"{counted}, mixed down to mono", f"{counted}, expected {expected}"))
        return out


@register
class SampleFormatCheck(Check):
    """A sample format (soundfile subtype) other than the `expected` ones: a fact, not a defect, since the
    file decoded; it tells where precision or range differ from the rest (e.g. a 24-bit or float file)."""

    name = "sample_format"
    severity = "info"
    modalities = ("audio",)
    expected: tuple[str, ...] = ("PCM_16",)

    def find_issues(self, table: pd.DataFrame, ctx: Context) -> list[Finding]:
        described = sf.available_subtypes()
        out = []
        for row in measured_rows(table):
            subtype = str(row["subtype"])
            if subtype not in self.expected:
                name = SUBTYPE_NAMES.get(subtype) or described.get(subtype) or "sample format"
                out.append(self.finding(row, f"{name} ({subtype})", 1.0))
        return out


@register
class DurationCheck(Check):
    """A clip shorter than `min_seconds` or longer than `max_seconds` (native duration); both default to
    None, i.e. not checked, because only the data set's owner knows what length is plausible."""

    name = "duration"
    severity = "error"
    modalities = ("audio",)
    min_seconds: float | None = None
    max_seconds: float | None = None

    def find_issues(self, table: pd.DataFrame, ctx: Context) -> list[Finding]:
        out = []
        for row in measured_rows(table):
            seconds = float(row["seconds"])
            if self.min_seconds is not None and seconds < self.min_seconds:
                reason = f"{seconds:.3f} s long, shorter than the minimum {self.min_seconds:g} s"
                out.append(self.finding(row, reason, seconds / self.min_seconds))
            elif self.max_seconds is not None and seconds > self.max_seconds:
                reason = f"{seconds:.3f} s long, longer than the maximum {self.max_seconds:g} s"
                out.append(self.finding(row, reason, self.max_seconds / seconds))
        return out
