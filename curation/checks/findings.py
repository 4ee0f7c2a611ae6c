"""Findings and the check registry: each kind of data problem is one small class, as in cleanlab's Datalab.

A check reads the probe table (one row per sample: the listing's columns plus what `probe.py` measured
when it read the file, see `probe.PROBE_COLUMNS`) and returns one `Finding` per affected sample, each with
a quality score in [0, 1] (0 = worst, cleanlab's convention) and a reason that names the numbers. Checks
never read files themselves, so that the validate stage reads every file exactly once.

Severity decides what happens to the sample: `error` means it cannot be used (quarantined, or the stage
fails, per `on_error`); `warning` keeps it and reports it (a dark photo is a slice, not a defect); `info`
is a fact worth knowing (a 24-bit file decoded fine). Params may change any check's severity or turn it
`off`, and pass its thresholds: `validate.checks.<name>: {severity: warning, max_share: 0.3}`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pandas as pd

SEVERITIES = ("error", "warning", "info")
OFF = "off"


class ReadinessError(ValueError):
    """Validation that cannot go on (bad settings, or findings under on_error: fail); names every cause."""


@dataclass(frozen=True)
class Finding:
    """One problem with one sample: which check found it, how bad, and why (with the numbers)."""

    id: str
    path: str
    check: str
    severity: str
    reason: str
    score: float = 0.0
    related: str = ""  # the other sample of a pair (duplicate, leak), when there is one


@dataclass(frozen=True)
class Context:
    """What checks may know beyond the probe table."""

    modality: str
    media: dict[str, Any]
    labels: list[str] | None = None
    split_column: str | None = None  # a column holding a given train/dev/test split, for leakage
    extra: dict[str, Any] = field(default_factory=dict)


class Check(ABC):
    """One kind of problem. Subclasses set `name`, `severity` (the default), `modalities`, and their
    thresholds as class attributes that params may override by keyword."""

    name: ClassVar[str]
    severity: ClassVar[str] = "warning"
    modalities: ClassVar[tuple[str, ...]] = ("audio", "image")
    default: ClassVar[bool] = True  # run unless `build_checks` is given an explicit list

    def __init__(self, severity: str | bool | None = None, **settings: Any) -> None:
        if severity is False:  # YAML reads an unquoted `off` as false
            severity = OFF
        if severity is not None and severity not in (*SEVERITIES, OFF):
            raise ReadinessError(f"check {self.name}: severity {severity!r} is not one of {(*SEVERITIES, OFF)}")
        self.level = severity or type(self).severity
        for key, value in settings.items():
            if key.startswith("_") or not hasattr(type(self), key) or callable(getattr(type(self), key)):
                raise ReadinessError(f"check {self.name}: unknown setting {key!r}")
            setattr(self, key, value)

    @abstractmethod
    def find_issues(self, table: pd.DataFrame, ctx: Context) -> list[Finding]:
        """The findings over the probe table (rows that could not be read have `decode_error` set)."""

    def finding(self, row: Any, reason: str, score: float = 0.0, related: str = "") -> Finding:
        """A finding of this check, at its configured severity, for `row` (a mapping with id and path)."""
        return Finding(str(row["id"]), str(row["path"]), self.name, self.level, reason, float(score), related)


REGISTRY: dict[str, type[Check]] = {}


def register(cls: type[Check]) -> type[Check]:
    """Class decorator: make a check known by its name (params refer to it so)."""
    if cls.name in REGISTRY:
        raise ReadinessError(f"check {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls
    return cls


def build_checks(
    modality: str, settings: dict[str, dict[str, Any]] | None, only: tuple[str, ...] | None = None
) -> list[Check]:
    """The registered checks for `modality` (the default ones, or those named in `only`), configured from
    params (`settings`: name -> keyword settings); unknown names are refused, checks set `off` left out."""
    settings = settings or {}
    unknown = sorted((set(settings) | set(only or ())) - set(REGISTRY))
    if unknown:
        raise ReadinessError(f"validate.checks: unknown check(s) {unknown}; known: {sorted(REGISTRY)}")
    chosen = [
        (name, cls)
        for name, cls in REGISTRY.items()
        if modality in cls.modalities and (name in only if only is not None else cls.default)
    ]
    checks = [cls(**(settings.get(name) or {})) for name, cls in chosen]
    return [c for c in checks if c.level != OFF]
