"""Per-file image checks, on the probe's measurements of the 8-bit grey image (see `probe.py`).

The exposure, sharpness and information checks follow CleanVision's issue types (dark, light, blurry,
low_information, odd_aspect_ratio, odd_size) with thresholds in plain units. As in cleanlab's Datalab,
which drops CleanVision issues found in more than a tenth of the data, a rule that most of the data set
trips describes the data, not outliers (white paper behind handwriting is "overexposed" and has little grey
entropy): past `max_prevalence` of the measured images, its findings are reported as info, saying so.
Each check skips rows the probe could not measure (the path and decode checks report those).
"""

from __future__ import annotations

import statistics
from abc import abstractmethod
from dataclasses import replace
from typing import Any

import pandas as pd

from curation.checks.decode import REJECT, ActionCheck, measured_rows, percent
from curation.checks.findings import Check, Context, Finding, register
from curation.checks.probe import BRIGHT_LEVEL, DARK_LEVEL

PREVALENCE_MIN_IMAGES = 20
MODE_NAMES = {
    "1": "1-bit black and white",
    "L": "8-bit grey",
    "LA": "grey with alpha",
    "La": "grey with premultiplied alpha",
    "P": "palette",
    "PA": "palette with alpha",
    "RGB": "colour",
    "RGBA": "with alpha",
    "RGBa": "with premultiplied alpha",
    "RGBX": "colour with padding",
    "CMYK": "CMYK colour",
    "YCbCr": "YCbCr colour",
    "LAB": "Lab colour",
    "HSV": "HSV colour",
    "I": "32-bit integer grey",
    "I;16": "16-bit grey",
    "I;16B": "16-bit grey, big-endian",
    "I;16L": "16-bit grey, little-endian",
    "I;16N": "16-bit grey, native byte order",
    "F": "32-bit float grey",
}


class _QualityCheck(Check):
    """An image-quality rule that is demoted to info when more than `max_prevalence` of the measured images
    trip it (judged from PREVALENCE_MIN_IMAGES measured images on: in a handful, a share says little).
    Subclasses implement `judge`: (reason, score) for a row that trips the rule, else None."""

    max_prevalence: float = 0.5

    @abstractmethod
    def judge(self, row: dict[str, Any]) -> tuple[str, float] | None:
        """(reason, score) when `row` trips the rule, else None."""

    def always_reported(self, row: dict[str, Any]) -> bool:
        """Whether `row` keeps the check's level even when the rule is typical of the data set."""
        return False

    def find_issues(self, table: pd.DataFrame, ctx: Context) -> list[Finding]:
        rows = measured_rows(table)
        hits = [(row, verdict) for row in rows if (verdict := self.judge(row)) is not None]
        typical = len(rows) >= PREVALENCE_MIN_IMAGES and len(hits) / len(rows) > self.max_prevalence
        note = (
            f" ({len(hits)} of {len(rows)} images are, over max_prevalence {percent(self.max_prevalence)}:"
            " typical of this data set, so info)"
        )
        out = []
        for row, (reason, score) in hits:
            finding = self.finding(row, reason, score)
            if typical and not self.always_reported(row):
                finding = replace(finding, reason=reason + note, severity="info")
            out.append(finding)
        return out


@register
class DarkCheck(_QualityCheck):
    """Under-exposed images: mean grey level below `max_brightness` (0..1). A slice to know, not a defect."""

    name = "dark"
    severity = "warning"
    modalities = ("image",)
    max_brightness: float = 0.15

    def judge(self, row: dict[str, Any]) -> tuple[str, float] | None:
        brightness = float(row["brightness"])
        if brightness >= self.max_brightness:
            return None
        reason = (
            f"mean brightness {brightness:.3f} ({percent(float(row['dark_share']))} of pixels below {DARK_LEVEL:g}),"
            f" below {self.max_brightness:g}"
        )
        return reason, brightness / self.max_brightness


@register
class OverexposedCheck(_QualityCheck):
    """Over-exposed images: more than `max_share` of the grey pixels near white (above 0.98)."""

    name = "overexposed"
    severity = "warning"
    modalities = ("image",)
    max_share: float = 0.5

    def judge(self, row: dict[str, Any]) -> tuple[str, float] | None:
        share = float(row["overexposed_share"])
        if share <= self.max_share:
            return None
        return (
            f"{percent(share)} of pixels near white (above {BRIGHT_LEVEL:g}), over {percent(self.max_share)}",
            1 - share,
        )


@register
class BlurryCheck(_QualityCheck):
    """Blurred or featureless images: variance of the Laplacian (0-255 grey, longer side shrunk to 256 px)
    below `min_blur`.

    The default 10 was set on the shared real data: handwritten numerals score 120 and more (but for one
    blank page: 0), and a Gaussian blur of sigma 2 px brings most NEU steel textures under 10 (sigma 3 does
    the same to handwriting); but NEU's naturally smooth "inclusion" class is sharp and scores 9 to 140
    (median 31), so 30 would flag half of that class: a warning that tracks a label instead of a defect.
    Raise it for data with strong edges (handwriting blurred with sigma 1 px still scores about 90).
    """

    name = "blurry"
    severity = "warning"
    modalities = ("image",)
    min_blur: float = 10.0

    def judge(self, row: dict[str, Any]) -> tuple[str, float] | None:
        blur = float(row["blur"])
        if blur >= self.min_blur:
            return None
        return f"sharpness {blur:.1f} (variance of the Laplacian), below {self.min_blur:g}", blur / self.min_blur


@register
class LowInformationCheck(_QualityCheck):
    """Images with little content: Shannon entropy of the 256-bin grey histogram below `min_entropy` bits
    (a photo has 6 to 8). An image of one flat grey level (0 bits) keeps the check's level even where low
    entropy is typical (line drawings on white), since it shows nothing at all."""

    name = "low_information"
    severity = "warning"
    modalities = ("image",)
    min_entropy: float = 2.0

    def judge(self, row: dict[str, Any]) -> tuple[str, float] | None:
        entropy = float(row["entropy"])
        if entropy >= self.min_entropy:
            return None
        if entropy == 0.0:
            return f"one flat grey level (entropy 0 bits), below {self.min_entropy:g} bits", 0.0
        return f"grey-level entropy {entropy:.2f} bits, below {self.min_entropy:g} bits", entropy / self.min_entropy

    def always_reported(self, row: dict[str, Any]) -> bool:
        return float(row["entropy"]) == 0.0


@register
class OddSizeCheck(Check):
    """Images too small (a side under `min_side` pixels), too elongated (aspect ratio over `max_aspect`), or
    far from the data set's typical size (area over `max_area_ratio` times, or under 1/`max_area_ratio` of,
    the median area of the measured images), as CleanVision's odd_size and odd_aspect_ratio."""

    name = "odd_size"
    severity = "warning"
    modalities = ("image",)
    min_side: int = 8
    max_aspect: float = 4.0
    max_area_ratio: float = 10.0

    def find_issues(self, table: pd.DataFrame, ctx: Context) -> list[Finding]:
        rows = measured_rows(table)
        if not rows:
            return []
        median_area = statistics.median(max(1, int(r["width"]) * int(r["height"])) for r in rows)
        out = []
        for row in rows:
            width, height = int(row["width"]), int(row["height"])
            problems: list[tuple[str, float]] = []
            if min(width, height) < self.min_side:
                problems.append((f"a side under {self.min_side} pixels", min(width, height) / self.min_side))
            aspect = max(width, height) / max(1, min(width, height))
            if aspect > self.max_aspect:
                problems.append((f"aspect ratio {aspect:.1f}, over {self.max_aspect:g}", self.max_aspect / aspect))
            ratio = max(1, width * height) / median_area
            if ratio > self.max_area_ratio or ratio * self.max_area_ratio < 1.0:
                times = f"{ratio:.3g}x" if ratio >= 1 else f"1/{1 / ratio:.3g} of"
                text = f"area {times} the data set's median {median_area:g} pixels, beyond {self.max_area_ratio:g}x"
                problems.append((text, min(ratio, 1 / ratio) * self.max_area_ratio))
            if problems:
                reason = f"{width}x{height} pixels: " + "; ".join(text for text, _ in problems)
                out.append(self.finding(row, reason, min(1.0, *(score for _, score in problems))))
        return out


@register
class ImageModeCheck(ActionCheck):
    """A PIL mode other than the `expected` ones (alpha, palette, 16-bit, CMYK, ...): `action` convert (a
    warning: loading converts it to L or RGB, per `media.channels`) or reject (an error)."""

    name = "image_mode"
    severity = "warning"
    modalities = ("image",)
    expected: tuple[str, ...] = ("L", "RGB")
    action = "convert"
    _actions = ("convert", REJECT)

    def find_issues(self, table: pd.DataFrame, ctx: Context) -> list[Finding]:
        target = "L" if int(ctx.media.get("channels", 1)) == 1 else "RGB"
        out = []
        for row in measured_rows(table):
            mode = str(row["mode"])
            if mode not in self.expected:
                described = f"mode {mode} ({MODE_NAMES.get(mode, 'unusual mode')})"
                rejected = f"{described}, not one of {list(self.expected)}"
                out.append(self.decided(row, f"{described}, converted to {target}", rejected))
        return out
