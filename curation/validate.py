"""The validate stage's library: read every listed file once, run every check, keep or quarantine each sample.

The flow is pandera's lazy validation: all checks run over all samples before anything is decided, so one
run reports every problem. A finding of severity `error` makes its sample unusable: with on_error
`quarantine` the sample is dropped and reported, with `fail` the stage stops listing every error. Warnings
and infos keep the sample and are reported. Counts always reconcile: seen = kept + quarantined.

The kept samples become the manifest, with `dup_group` (the exact / near duplicate cluster) so that the
split stage keeps duplicates on one side.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

# Importing the check modules registers their checks.
from curation.checks import audio as _audio_checks  # noqa: F401
from curation.checks import image as _image_checks  # noqa: F401
from curation.checks import rows as _row_checks  # noqa: F401
from curation.checks.duplicates import duplicate_groups
from curation.checks.findings import Check, Context, Finding, ReadinessError, build_checks, register
from curation.checks.probe import PROBE_COLUMNS, probe_files
from curation.ingest import NOISE_COLUMNS, STAGE_COLUMNS
from curation.io import markdown_cell as _cell
from curation.manifest import REQUIRED
from curation.media import MediaError, resolve_inside

ON_ERROR = ("fail", "quarantine")
NOISE_POOLS = ("augment", "test")
NOISE_CHECKS = (
    "path", "duplicate_id", "label", "noise_pool", "decode", "nonfinite", "silence", "clipping",
    "sample_rate", "channels", "sample_format", "exact_duplicate", "near_duplicate", "leakage",
)  # fmt: skip
SOURCE_PREFIX = "source:"  # a source column named like a probe measurement, while the checks run
FINDING_COLUMNS = ("id", "path", "check", "severity", "reason", "score", "related")


@register
class NoisePool(Check):
    """A background-noise clip whose pool is not augment or test (so it could leak into both)."""

    name = "noise_pool"
    severity = "error"
    modalities = ("audio",)
    default = False  # noise manifests only

    def find_issues(self, table: pd.DataFrame, ctx: Context) -> list[Finding]:
        return [
            self.finding(row, f"pool {row['pool']!r} is not one of {NOISE_POOLS}")
            for row in table.to_dict("records")
            if row["pool"] not in NOISE_POOLS
        ]


@dataclass(frozen=True)
class Validation:
    """What validate decided: the kept manifest, the probe table of every row (with `status`), the findings
    (one row each, `FINDING_COLUMNS`) and the report (counts per check, reconciliation)."""

    kept: pd.DataFrame
    table: pd.DataFrame
    findings: pd.DataFrame
    report: dict[str, Any]


def validate(
    listing: pd.DataFrame,
    root: str | os.PathLike[str],
    modality: str,
    media: dict[str, Any],
    *,
    labels: list[str] | None = None,
    settings: dict[str, dict[str, Any]] | None = None,
    on_error: str = "fail",
    split_column: str | None = None,
    workers: int = 1,
) -> Validation:
    """Validate the samples an ingest adapter listed (`curation.ingest.list_source`).

    `settings` are params' `validate.checks` (per check: severity and thresholds); `split_column` names a
    metadata column holding a given split, across which duplicates are leakage. The kept manifest has the
    required columns (path joined to the root, split empty), the metadata, and `dup_group`.
    """
    checks = build_checks(modality, settings)
    result = _run(listing, root, modality, media, checks, labels, on_error, split_column, workers, "samples")
    kept = result.kept.assign(split="")
    kept["dup_group"] = duplicate_groups(kept, _near_distance(checks)).to_numpy()
    metadata = [c for c in listing.columns if c not in (*REQUIRED, *STAGE_COLUMNS)]
    kept = _select(kept, [*REQUIRED, *metadata, "dup_group"]).sort_values("id", kind="stable").reset_index(drop=True)
    counts = Counter(kept["label"])
    result.report["labels"] = {label: counts[label] for label in (labels or sorted(counts))}
    return Validation(kept, result.table, result.findings, result.report)


def validate_noise(
    listing: pd.DataFrame,
    root: str | os.PathLike[str],
    media: dict[str, Any],
    *,
    settings: dict[str, dict[str, Any]] | None = None,
    on_error: str = "fail",
    workers: int = 1,
) -> Validation:
    """Validate background-noise clips (`curation.ingest.list_noise`): decodable, not silent, pool augment
    or test, group given, and no duplicate across the two pools (which would leak test noise into training).
    A fully silent clip is an error: it cannot be mixed at any SNR."""
    if listing.empty:
        empty = pd.DataFrame({c: pd.Series(dtype=str) for c in NOISE_COLUMNS})
        return Validation(empty, listing, _findings_frame([]), _report(0, 0, 0, [], "noise clips"))
    settings = dict(settings or {})
    settings["leakage"] = {**(settings.get("leakage") or {}), "order": list(NOISE_POOLS)}
    checks = build_checks("audio", {k: v for k, v in settings.items() if k in NOISE_CHECKS}, only=NOISE_CHECKS)
    table = listing.assign(label=listing["group"])
    result = _run(table, root, "audio", media, checks, None, on_error, "pool", workers, "noise clips")
    metadata = [c for c in listing.columns if c not in (*NOISE_COLUMNS, *STAGE_COLUMNS)]
    kept = _select(result.kept, [*NOISE_COLUMNS, *metadata]).sort_values("id", kind="stable").reset_index(drop=True)
    clips = kept.groupby(["group", "pool"]).size()
    result.report["clips"] = {f"{group}/{pool}": int(n) for (group, pool), n in clips.items()}
    return Validation(kept, result.table, result.findings, result.report)


def with_measurements(validation: Validation, modality: str) -> pd.DataFrame:
    """The kept manifest with what the probe measured of each file (sample rate, duration, brightness...),
    the table a data set's profile summarises."""
    columns = ["id", *PROBE_COLUMNS[modality]]
    measured = validation.table.loc[validation.table["status"] == "kept", columns]
    return validation.kept.merge(measured, on="id", how="left", validate="one_to_one", suffixes=("", " (measured)"))


def _run(
    listing: pd.DataFrame,
    root: str | os.PathLike[str],
    modality: str,
    media: dict[str, Any],
    checks: list[Check],
    labels: list[str] | None,
    on_error: str,
    split_column: str | None,
    workers: int,
    what: str,
) -> Validation:
    """Resolve, probe, check, then decide; `kept` holds the kept rows with root-joined paths."""
    if on_error not in ON_ERROR:
        raise ReadinessError(f"on_error {on_error!r}: must be one of {ON_ERROR}")
    if split_column is not None and split_column not in listing.columns:
        raise ReadinessError(f"split column {split_column!r} is not a column of the listing: {list(listing.columns)}")
    table = _resolve(listing, Path(root))
    paths = [Path(p) if p else None for p in table["resolved"]]
    probed = probe_files(paths, modality, media, desc=f"validate {what}", workers=workers)
    # A source column named like a measurement (NEU's `mode`, ESC-50's `sample_rate`) is set aside while
    # the checks read the measurements, and gets its name back in the kept manifest.
    aside = {c: f"{SOURCE_PREFIX}{c}" for c in table.columns if c in probed.columns}
    table = pd.concat([table.rename(columns=aside).reset_index(drop=True), probed.reset_index(drop=True)], axis=1)
    ctx = Context(modality, media, labels, split_column, {"label_name": "group" if what == "noise clips" else "label"})
    findings = [f for check in checks for f in check.find_issues(table, ctx)]
    bad_ids = {f.id for f in findings if f.severity == "error"}
    errors = [f for f in findings if f.severity == "error"]
    if errors and on_error == "fail":
        raise ReadinessError(
            f"{len(errors)} error(s) in {int(table['id'].isin(bad_ids).sum())} of {len(table)} {what} under {root} "
            "(on_error: fail; set on_error: quarantine to drop them instead):\n  "
            + "\n  ".join(f"id {f.id!r}, path {f.path!r}: [{f.check}] {f.reason}" for f in errors)
        )
    table["status"] = ["quarantined" if i in bad_ids else "kept" for i in table["id"]]
    kept = table[table["status"] == "kept"].copy()
    if kept.empty:
        raise ReadinessError(f"data root {root}: every one of the {len(table)} {what} was quarantined")
    kept["path"] = kept["resolved"]
    keep_columns = [c for c in kept.columns if c not in ("under", "listing_error", "path_error", "resolved")]
    quarantined = int((table["status"] == "quarantined").sum())
    report = _report(len(listing), len(kept), quarantined, findings, what)
    return Validation(kept[keep_columns], table, _findings_frame(findings), report)


def _select(kept: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """`columns` of the kept rows, a source column set aside under SOURCE_PREFIX taken by its own name."""
    return pd.DataFrame({c: kept[SOURCE_PREFIX + c] if SOURCE_PREFIX + c in kept else kept[c] for c in columns})


def _resolve(listing: pd.DataFrame, root: Path) -> pd.DataFrame:
    """The listing with `resolved` (the path to open, relative to the working folder as the root is) and
    `path_error` (why it cannot be opened); rows with a listing error are not resolved."""
    resolved, errors = [], []
    for row in listing.to_dict("records"):
        target, error = "", ""
        if row.get("listing_error"):
            pass
        elif not row["path"]:
            error = "path is missing"
        else:
            try:
                resolve_inside(root, row["under"])
                target = Path(os.path.normpath(root / row["under"])).as_posix()
            except MediaError as exc:
                error = exc.reason
        resolved.append(target)
        errors.append(error)
    return listing.assign(resolved=resolved, path_error=errors)


def _near_distance(checks: list[Check]) -> int:
    """The fingerprint distance the duplicate clusters use: the near_duplicate check's, or 0 (identical
    fingerprints only) when that check is off."""
    near = [c for c in checks if c.name == "near_duplicate"]
    return int(near[0].max_distance) if near else 0


def _findings_frame(findings: list[Finding]) -> pd.DataFrame:
    rows = [asdict(f) for f in findings]
    frame = pd.DataFrame(rows, columns=list(FINDING_COLUMNS))
    return frame.sort_values(["check", "id"], kind="stable").reset_index(drop=True)


def _report(seen: int, kept: int, quarantined: int, findings: list[Finding], what: str) -> dict[str, Any]:
    """The counts (and whether seen = kept + quarantined holds) and, per check, its findings by severity and
    the samples it flagged."""
    by_check: dict[str, dict[str, Any]] = {}
    for f in findings:
        entry = by_check.setdefault(f.check, {"severity": Counter(), "samples": set(), "findings": 0})
        entry["severity"][f.severity] += 1
        entry["samples"].add(f.id)
        entry["findings"] += 1
    return {
        "what": what,
        "seen": seen,
        "kept": kept,
        "quarantined": quarantined,
        "reconciled": seen == kept + quarantined,
        "checks": {
            name: {
                "findings": e["findings"],
                "samples": len(e["samples"]),
                "severity": dict(sorted(e["severity"].items())),
            }
            for name, e in sorted(by_check.items())
        },
    }


def readiness_markdown(
    dataset: str,
    report: dict[str, Any],
    findings: pd.DataFrame,
    noise_findings: pd.DataFrame,
    profile: dict[str, Any],
    max_rows: int = 30,
) -> str:
    """The readiness report: counts, findings per check (every error; the first `max_rows` of other
    severities, the rest in findings.csv), ignored files, the noise clips, class balance, slices and drift."""
    from curation.checks.drift import to_markdown as profile_markdown

    lines = [
        f"# Readiness report: {dataset}",
        "",
        "| listed | excluded by query | seen | kept | quarantined | files ignored |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {report['listed']} | {report['excluded_by_query']} | {report['seen']} | {report['kept']} "
        f"| {report['quarantined']} | {len(report['ignored'])} |",
        "",
        *_findings_section("Findings", report, findings, max_rows),
    ]
    if report["ignored"]:
        lines += ["## Ignored files", "", "| path | reason |", "|---|---|"]
        lines += [f"| {_cell(f['path'])} | {_cell(f['reason'])} |" for f in report["ignored"]] + [""]
    noise = report["noise"]
    if noise["seen"]:
        lines += [
            "## Background noise",
            "",
            "| seen | kept | quarantined |",
            "|---:|---:|---:|",
            f"| {noise['seen']} | {noise['kept']} | {noise['quarantined']} |",
            "",
            "| group/pool | clips |",
            "|---|---:|",
            *(f"| {_cell(key)} | {n} |" for key, n in noise["clips"].items()),
            "",
            *_findings_section("Noise findings", noise, noise_findings, max_rows),
        ]
    lines.append(profile_markdown(profile, report["drift"] if report["reference_pinned"] else None, report["balance"]))
    return "\n".join(lines).rstrip() + "\n"


def _findings_section(title: str, report: dict[str, Any], findings: pd.DataFrame, max_rows: int) -> list[str]:
    """A table of checks (findings by severity, samples), then each check's findings."""
    if findings.empty:
        return [f"## {title}", "", "No findings.", ""]
    lines = [f"## {title}", "", "| check | severity | findings | samples |", "|---|---|---:|---:|"]
    for name, entry in report["checks"].items():
        severity = ", ".join(f"{k} {v}" for k, v in sorted(entry["severity"].items()))
        lines.append(f"| {name} | {severity} | {entry['findings']} | {entry['samples']} |")
    lines.append("")
    for name, group in findings.groupby("check", sort=True):
        errors = group["severity"] == "error"
        shown = pd.concat([group[errors], group[~errors].head(max_rows)])
        lines += [f"### {name}", "", "| id | severity | reason | related |", "|---|---|---|---|"]
        lines += [
            f"| {_cell(r['id'])} | {r['severity']} | {_cell(r['reason'])} | {_cell(r['related'])} |"
            for r in shown.to_dict("records")
        ]
        if len(shown) < len(group):
            lines.append(f"\n... and {len(group) - len(shown)} more in findings.csv")
        lines.append("")
    return lines
