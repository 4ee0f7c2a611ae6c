"""The decode check, and what the per-file checks share: which rows the probe measured, how a share reads
in a reason, and the convert-or-reject pattern of the format checks (sample rate, channels, image mode)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

import pandas as pd

from curation.checks.findings import Check, Context, Finding, ReadinessError, register

CONVERTED_SCORE = 0.5  # a sample the pipeline converts on loading: usable, but not as stored
REJECT = "reject"


@register
class DecodeCheck(Check):
    """A file that could not be read or decoded (empty, truncated, not audio/image at all, oversize header);
    the reason is the probe's `decode_error`."""

    name = "decode"
    severity = "error"

    def find_issues(self, table: pd.DataFrame, ctx: Context) -> list[Finding]:
        errors = [(row, _text(row.get("decode_error"))) for row in table.to_dict("records")]
        return [self.finding(row, reason) for row, reason in errors if reason]


class ActionCheck(Check):
    """A format check whose finding either converts the sample on loading (at the check's level, usually a
    warning) or rejects it (an error), by the `action` setting; subclasses set `action` and `_actions`."""

    action: str
    _actions: ClassVar[tuple[str, ...]]

    def __init__(self, severity: str | None = None, **settings: Any) -> None:
        super().__init__(severity, **settings)
        if self.action not in self._actions:
            raise ReadinessError(f"check {self.name}: action {self.action!r} is not one of {self._actions}")

    def decided(self, row: dict[str, Any], converted: str, rejected: str) -> Finding:
        """The finding for `row`: the `converted` reason at the check's level, or `rejected` as an error."""
        if self.action == REJECT:
            return replace(self.finding(row, rejected, 0.0), severity="error")
        return self.finding(row, converted, CONVERTED_SCORE)


def measured_rows(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows the probe measured: a file was read (sha256 set) and decoded (no `decode_error`). The other
    rows are reported once, by the path or decode check, so the content checks skip them."""
    if "sha256" not in table or "decode_error" not in table:
        return []
    return [r for r in table.to_dict("records") if _text(r["sha256"]) and not _text(r["decode_error"])]


def percent(share: float) -> str:
    """A share as a short percentage for reasons: 0.73 -> '73%', 0.005 -> '0.5%', 0.0123 -> '1.2%'."""
    p = 100.0 * float(share)
    if p >= 10.0 or p == 0.0:
        return f"{p:.0f}%"
    return "<0.001%" if p < 0.001 else f"{p:.2g}%"


def _text(value: Any) -> str:
    """A text cell, or '' for a missing one (None, or NaN after a table merge)."""
    return value if isinstance(value, str) else ""
