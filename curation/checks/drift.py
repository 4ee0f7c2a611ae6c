"""Dataset profile, drift against the previous dataset version, and class balance.

`profile` summarises the kept samples as a small, deterministic JSON (git-tracked as a metric): label counts
and class balance, per split per label counts, per slice counts, and for every other column either numeric
statistics (with 21 quantiles, 0 %, 5 %, ..., 100 %, enough to rebuild a CDF) or value counts. The same rows in
any order give the same profile: values are sorted before any sum, and floats are rounded to 6 significant
digits.

`drift` compares the profile with the one of the previous dataset version (a reference JSON the user pins)
and returns one finding per change: the data set's size, a new or vanished class, label shares, a column added,
removed or changing type, more missing values, a numeric column whose scale changed (a unit change shows up as
x1000), a numeric column's distribution (PSI over the reference's deciles), a categorical column's new, vanished
or reshuffled values (a sample-rate change shows up as a new value of `sample_rate`). Shifts are reported only
when the effect is big enough to matter (the threshold) and too big to be sampling noise (a chi-squared bound at
`alpha`), so that a fresh sample of the same distribution raises nothing.

Every drift finding is a `warning` by default, the sample-rate change included: a new data set version is
expected to differ, and only the user knows which differences are wrong. `thresholds={"severity": {"new_value":
"error"}}` makes a kind an error. A finding is a dict {kind, column, severity, reason, value, reference}: `value`
is the current number (or the shift statistic, e.g. the PSI) and `reference` the reference's number (or the
threshold the statistic passed).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from curation.checks.findings import ReadinessError
from curation.io import markdown_cell

SCHEMA = 1
NOT_PROFILED = ("id", "path", "sha256", "label", "split", "dup_group")  # unique per sample, or summarised on their own
QUANTILES = tuple(i / 20 for i in range(21))  # 0 %, 5 %, ..., 100 %
MAX_CATEGORICAL_VALUES = 50  # a categorical column with more distinct values keeps only the number
MAX_NUMERIC_VALUES = 20  # a numeric column with at most this many distinct values also keeps value counts
KINDS = (
    "size",
    "new_class",
    "vanished_class",
    "label_shift",
    "column_added",
    "column_removed",
    "type_change",
    "missing",
    "cardinality",
    "scale",
    "psi",
    "new_value",
    "vanished_value",
    "value_shift",
)
DEFAULT_THRESHOLDS: dict[str, Any] = {
    "size_factor": 2.0,  # sample count multiplied or divided by more than this
    "label_tvd": 0.1,  # total variation distance of the shares of the classes both versions have
    "value_tvd": 0.1,  # the same for the values of a categorical column
    "scale_factor": 2.0,  # median (near a zero median: the larger of |p05|, |p95|) ratio outside [1/f, f]
    "psi": 0.25,  # population stability index over the reference's deciles
    "missing_share": 0.1,  # rise of the share of missing values
    "alpha": 0.001,  # a shift must also be unlikely as sampling noise at this level
    "severity": {},  # kind -> "warning" | "error"; every kind defaults to "warning"
}
_UNIT_FACTORS = (60.0, 3600.0)  # seconds <-> minutes <-> hours, besides powers of ten


def profile(
    table: pd.DataFrame, modality: str, slice_columns: list[str], declared: list[str] | None = None
) -> dict[str, Any]:
    """A JSON-able summary of the kept samples, the same for the same rows in any order, for drift and balance.
    `declared` (the label set in params) lets a class with no sample at all be reported (`absent_labels`)."""
    missing = [c for c in ("label", "split", *slice_columns) if c not in table.columns]
    if missing:
        raise ReadinessError(f"profile: column(s) {missing} not in the table; columns: {list(table.columns)}")
    labels = table["label"].astype(str)
    splits = table["split"].astype(str)
    counts = _counts(labels)
    n = len(table)
    return {
        "schema": SCHEMA,
        "modality": modality,
        "n": n,
        "labels": {"counts": counts, "shares": {k: _round(v / n) for k, v in counts.items()}},
        "absent_labels": sorted(str(x) for x in (declared or []) if str(x) not in counts),
        "balance": _balance(counts),
        "splits": {
            split: {label: int(((splits == split) & (labels == label)).sum()) for label in counts}
            for split in sorted(splits.unique())
        },
        "slices": {col: _counts(table[col].astype(str)) for col in sorted({"split", *slice_columns})},
        "columns": {col: _column(table[col]) for col in sorted(map(str, table.columns)) if col not in NOT_PROFILED},
    }


def drift(
    current: dict[str, Any], reference: dict[str, Any] | None, thresholds: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Findings on how `current` differs from the previous version's profile; none when no reference is pinned."""
    if not reference:
        return []
    limits = _thresholds(thresholds)
    for key in ("schema", "modality"):
        if current.get(key) != reference.get(key):
            raise ReadinessError(
                f"drift: the reference profile has {key} {reference.get(key)!r}, the current one {current.get(key)!r};"
                " re-profile the reference version"
            )
    out = _size_drift(current, reference, limits) + _label_drift(current, reference, limits)
    cur_cols, ref_cols = current["columns"], reference["columns"]
    for col in sorted(set(cur_cols) - set(ref_cols)):
        out.append(_finding(limits, "column_added", col, f"column {col} added ({cur_cols[col]['type']})"))
    for col in sorted(set(ref_cols) - set(cur_cols)):
        out.append(_finding(limits, "column_removed", col, f"column {col} removed (was {ref_cols[col]['type']})"))
    for col in sorted(set(cur_cols) & set(ref_cols)):
        out += _column_drift(col, cur_cols[col], ref_cols[col], limits)
    return out


def balance_findings(
    profile: dict[str, Any],
    max_imbalance: float = 10.0,
    min_per_class: int = 10,
    min_per_slice: int = 10,
    severity: str = "warning",
) -> list[dict[str, Any]]:
    """Class balance problems (a class too small in some split, a large imbalance) and too small slices."""
    if severity not in ("warning", "error"):
        raise ReadinessError(f"balance: severity {severity!r} is not 'warning' or 'error'")
    out: list[dict[str, Any]] = []

    def add(kind: str, column: str, reason: str, value: Any, reference: Any) -> None:
        out.append(
            {
                "kind": kind,
                "column": column,
                "severity": severity,
                "reason": reason,
                "value": value,
                "reference": reference,
            }
        )

    for label in profile.get("absent_labels", []):
        add("small_class", "label", f"class {label!r} has no samples at all", 0, min_per_class)
    ratio = profile["balance"]["imbalance_ratio"]
    if ratio is not None and ratio > max_imbalance:
        b = profile["balance"]
        add(
            "imbalance",
            "label",
            f"class imbalance {_fmt(ratio)} > {_fmt(max_imbalance)}: largest class {b['largest']!r}"
            f" {b['largest_count']} samples, smallest {b['smallest']!r} {b['smallest_count']}",
            ratio,
            max_imbalance,
        )
    for split, per_label in profile["splits"].items():
        for label, count in per_label.items():
            if count < min_per_class:
                add(
                    "small_class",
                    "label",
                    f"class {label!r} has {count} sample(s) in {_split_name(split)} (< {min_per_class})",
                    count,
                    min_per_class,
                )
    for col, counts in profile["slices"].items():
        for value, count in counts.items():
            if count < min_per_slice:
                add(
                    "small_slice",
                    col,
                    f"slice {col}={value} has {count} sample(s) (< {min_per_slice})",
                    count,
                    min_per_slice,
                )
    return out


def to_markdown(
    profile: dict[str, Any], drift_findings: list[dict[str, Any]] | None, balance_findings: list[dict[str, Any]]
) -> str:
    """The readiness report's class balance, per-slice counts and drift sections; `drift_findings` None means
    that no reference profile is pinned (as opposed to an empty list: a reference, and no drift)."""
    b = profile["balance"]
    splits = sorted(profile["splits"])
    lines = ["## Class balance", ""]
    if b["classes"]:
        entropy = "n/a" if b["normalized_entropy"] is None else _fmt(b["normalized_entropy"])
        lines += [
            f"{profile['n']} samples, {b['classes']} classes; imbalance ratio {_fmt(b['imbalance_ratio'])} (largest"
            f" {_cell(b['largest'])}: {b['largest_count']}, smallest {_cell(b['smallest'])}:"
            f" {b['smallest_count']}); normalised label entropy {entropy}.",
            "",
        ]
    rows = [
        [label, count, _percent(profile["labels"]["shares"][label]), *(profile["splits"][s][label] for s in splits)]
        for label, count in profile["labels"]["counts"].items()
    ]
    lines += _table(["label", "samples", "share", *(_split_name(s) for s in splits)], rows)
    lines += ["", *_findings_table(balance_findings, "No class balance problems."), "", "## Per-slice counts", ""]
    n = profile["n"]
    slice_rows = [
        [f"{col}={value}", count, _percent(count / n if n else 0.0)]
        for col, counts in profile["slices"].items()
        for value, count in counts.items()
    ]
    lines += [*_table(["slice", "samples", "share"], slice_rows), "", "## Drift against the reference", ""]
    if drift_findings is None:
        lines.append("No reference profile pinned: drift not checked.")
    else:
        lines += _findings_table(drift_findings, "No drift against the reference profile.")
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    """A value as one Markdown table cell, floats in the profile's number format."""
    return markdown_cell(_fmt(value) if isinstance(value, float) else value)


# --- profile helpers -------------------------------------------------------------------------------------------


def _round(x: float) -> float:
    """`x` to 6 significant digits, so that the JSON does not change with summation order."""
    return float(f"{x:.6g}")


def _counts(values: Iterable[str]) -> dict[str, int]:
    """Value counts, keys sorted."""
    counts = pd.Series(list(values), dtype=object).value_counts()
    return {str(k): int(counts[k]) for k in sorted(counts.index, key=str)}


def _balance(counts: dict[str, int]) -> dict[str, Any]:
    """Imbalance ratio (largest / smallest class), the extreme classes, and normalised label entropy."""
    if not counts:
        return {
            "classes": 0,
            "imbalance_ratio": None,
            "largest": None,
            "largest_count": 0,
            "smallest": None,
            "smallest_count": 0,
            "normalized_entropy": None,
        }
    smallest = min(counts, key=lambda k: (counts[k], k))
    largest = min(counts, key=lambda k: (-counts[k], k))
    total = sum(counts.values())
    shares = np.array([counts[k] / total for k in counts])
    entropy = None if len(counts) < 2 else _round(float(-(shares * np.log(shares)).sum() / math.log(len(counts))))
    return {
        "classes": len(counts),
        "imbalance_ratio": _round(counts[largest] / counts[smallest]),
        "largest": largest,
        "largest_count": counts[largest],
        "smallest": smallest,
        "smallest_count": counts[smallest],
        "normalized_entropy": entropy,
    }


def _column(series: pd.Series) -> dict[str, Any]:
    """Numeric statistics or value counts of one column; numeric when every present value parses as a number."""
    text = series.astype(str)
    present = ~series.isna() & (text.str.strip() != "")
    values = text[present]
    base: dict[str, Any] = {"count": int(present.sum()), "missing": int((~present).sum())}
    if not len(values):
        return {"type": "empty", **base}
    numbers = None
    if not pd.api.types.is_bool_dtype(series):
        parsed = pd.to_numeric(values.str.strip(), errors="coerce")
        numbers = None if parsed.isna().any() else np.sort(parsed.to_numpy(dtype=float))
    if numbers is None:
        counts = _counts(values)
        out = {"type": "categorical", **base, "distinct": len(counts)}
        return out | ({"values": counts} if len(counts) <= MAX_CATEGORICAL_VALUES else {})
    finite = numbers[np.isfinite(numbers)]
    counts = _counts(_fmt(x) for x in numbers)  # keys "16000", not "16000.0"
    out = {"type": "numeric", **base, "nonfinite": int(len(numbers) - len(finite)), "distinct": len(counts)}
    if len(finite):
        q = [_round(float(v)) for v in np.quantile(finite, QUANTILES)]
        out |= {"min": q[0], "p05": q[1], "median": q[10], "p95": q[19], "max": q[20]}
        out |= {"mean": _round(float(finite.mean())), "std": _round(float(finite.std())), "quantiles": q}
    return out | ({"values": counts} if len(counts) <= MAX_NUMERIC_VALUES else {})


# --- drift helpers ---------------------------------------------------------------------------------------------


def _thresholds(thresholds: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults overridden by `thresholds`; unknown keys, kinds or severities are refused."""
    given = dict(thresholds or {})
    unknown = sorted(set(given) - set(DEFAULT_THRESHOLDS))
    if unknown:
        raise ReadinessError(f"drift: unknown threshold(s) {unknown}; known: {sorted(DEFAULT_THRESHOLDS)}")
    severity = dict(given.pop("severity", None) or {})
    bad = {k: v for k, v in severity.items() if k not in KINDS or v not in ("warning", "error")}
    if bad:
        raise ReadinessError(f"drift: bad severity setting(s) {bad}; kinds: {list(KINDS)}; levels: warning, error")
    return DEFAULT_THRESHOLDS | given | {"severity": severity}


def _finding(
    limits: dict[str, Any], kind: str, column: str, reason: str, value: Any = None, reference: Any = None
) -> dict[str, Any]:
    """One drift finding at the configured severity of its kind."""
    severity = limits["severity"].get(kind, "warning")
    return {
        "kind": kind,
        "column": column,
        "severity": severity,
        "reason": reason,
        "value": value,
        "reference": reference,
    }


def _size_drift(current: dict[str, Any], reference: dict[str, Any], limits: dict[str, Any]) -> list[dict[str, Any]]:
    """The sample count multiplied or divided by more than the size factor."""
    cur, ref = current["n"], reference["n"]
    factor = limits["size_factor"]
    if cur == ref or (ref and cur and 1 / factor <= cur / ref <= factor):
        return []
    ratio = f" (x{_fmt(cur / ref, 3)})" if ref and cur else ""
    return [_finding(limits, "size", "", f"sample count {ref} -> {cur}{ratio}", cur, ref)]


def _label_drift(current: dict[str, Any], reference: dict[str, Any], limits: dict[str, Any]) -> list[dict[str, Any]]:
    """New and vanished classes, and a shift of the shares of the classes both versions have."""
    cur, ref = current["labels"]["counts"], reference["labels"]["counts"]
    out = [
        _finding(
            limits,
            "new_class",
            "label",
            f"new class {label!r}: {cur[label]} samples ({_percent(cur[label] / current['n'])})",
            cur[label],
            0,
        )
        for label in sorted(set(cur) - set(ref))
    ]
    out += [
        _finding(
            limits,
            "vanished_class",
            "label",
            f"class {label!r} is gone ({ref[label]} samples, {_percent(ref[label] / reference['n'])} in the reference)",
            0,
            ref[label],
        )
        for label in sorted(set(ref) - set(cur))
    ]
    shift = _share_shift(cur, ref, limits["label_tvd"], limits["alpha"])
    if shift:
        tvd, movers = shift
        out.append(
            _finding(
                limits,
                "label_shift",
                "label",
                f"label shares moved (total variation {_fmt(tvd, 3)} > {_fmt(limits['label_tvd'])}): " + movers,
                tvd,
                limits["label_tvd"],
            )
        )
    return out


def _share_shift(cur: dict[str, int], ref: dict[str, int], max_tvd: float, alpha: float) -> tuple[float, str] | None:
    """Total variation distance between the shares of the values both count tables have (renormalised, so that a
    new or vanished value is reported once, by itself), with the three biggest movers; None unless it exceeds
    `max_tvd` and a chi-squared test of homogeneity rejects at `alpha`."""
    common = sorted(set(cur) & set(ref))
    if len(common) < 2:
        return None
    c = np.array([cur[k] for k in common], dtype=float)
    r = np.array([ref[k] for k in common], dtype=float)
    cs, rs = c / c.sum(), r / r.sum()
    tvd = _round(float(np.abs(cs - rs).sum() / 2))
    if tvd <= max_tvd or stats.chi2_contingency(np.vstack([c, r]), correction=False).pvalue >= alpha:
        return None
    order = sorted(range(len(common)), key=lambda i: (-abs(cs[i] - rs[i]), common[i]))[:3]
    movers = ", ".join(f"{common[i]!r} {_percent(rs[i])} -> {_percent(cs[i])}" for i in order)
    return tvd, movers


def _column_drift(col: str, cur: dict[str, Any], ref: dict[str, Any], limits: dict[str, Any]) -> list[dict[str, Any]]:
    """Drift of one column both versions have: type, missing values, values, scale and distribution."""
    out: list[dict[str, Any]] = []
    cur_missing = cur["missing"] / max(cur["count"] + cur["missing"], 1)
    ref_missing = ref["missing"] / max(ref["count"] + ref["missing"], 1)
    if cur_missing - ref_missing > limits["missing_share"]:
        out.append(
            _finding(
                limits,
                "missing",
                col,
                f"{col}: missing values {_percent(ref_missing)} -> {_percent(cur_missing)}",
                _round(cur_missing),
                _round(ref_missing),
            )
        )
    if cur["type"] != ref["type"]:
        return [
            *out,
            _finding(limits, "type_change", col, f"{col}: {ref['type']} -> {cur['type']}", cur["type"], ref["type"]),
        ]
    if "values" in cur and "values" in ref:
        out += _value_drift(col, cur, ref, limits)
    elif cur["type"] == "categorical" and ("values" in cur or "values" in ref):
        out.append(
            _finding(
                limits,
                "cardinality",
                col,
                f"{col}: {ref['distinct']} distinct values -> {cur['distinct']}",
                cur["distinct"],
                ref["distinct"],
            )
        )
    if cur["type"] == "numeric" and cur.get("quantiles") and ref.get("quantiles"):
        scale = _scale_drift(col, cur, ref, limits)
        out += scale
        if not scale and not ("values" in cur and "values" in ref):
            out += _psi_drift(col, cur, ref, limits)
    return out


def _value_drift(col: str, cur: dict[str, Any], ref: dict[str, Any], limits: dict[str, Any]) -> list[dict[str, Any]]:
    """New values, vanished values, and a shift of the shares of the common values of a column."""
    out: list[dict[str, Any]] = []
    cur_values, ref_values = cur["values"], ref["values"]
    cur_n, ref_n = cur["count"] + cur["missing"], ref["count"] + ref["missing"]
    for kind, values, n, other, template, where in (
        ("new_value", cur_values, cur_n, ref_values, "{col}: new value{s} {listed}", "of samples"),
        ("vanished_value", ref_values, ref_n, cur_values, "{col}: value{s} {listed} vanished", "of the reference"),
    ):
        changed = sorted(set(values) - set(other), key=lambda k: (-values[k], k))
        if changed:
            listed = ", ".join(f"{v} ({_percent(values[v] / n)} {where})" for v in changed[:5])
            listed += f" and {len(changed) - 5} more" if len(changed) > 5 else ""
            reason = template.format(col=col, s="s" if len(changed) > 1 else "", listed=listed)
            shares = {v: _round(values[v] / n) for v in changed}  # the side that has them; the other side's values
            now, before = (shares, sorted(other)) if kind == "new_value" else (sorted(other), shares)
            out.append(_finding(limits, kind, col, reason, now, before))
    shift = _share_shift(cur_values, ref_values, limits["value_tvd"], limits["alpha"])
    if shift:
        tvd, movers = shift
        out.append(
            _finding(
                limits,
                "value_shift",
                col,
                f"{col}: value shares moved (total variation {_fmt(tvd, 3)} > {_fmt(limits['value_tvd'])}): " + movers,
                tvd,
                limits["value_tvd"],
            )
        )
    return out


def _scale_drift(col: str, cur: dict[str, Any], ref: dict[str, Any], limits: dict[str, Any]) -> list[dict[str, Any]]:
    """A numeric column whose scale changed: the median ratio, or when a median is zero or close to it (within half
    the p05..p95 spread, where its ratio is unstable) the ratio of the larger of |p05| and |p95|, outside [1/f, f];
    ratios near a power of ten, 60 or 3600 suggest a unit change."""
    if all(abs(p["median"]) > (p["p95"] - p["p05"]) / 2 for p in (cur, ref)):
        what, now, before = "median", cur["median"], ref["median"]
        ratio = abs(now / before)
    else:
        what = "p05..p95 magnitude"
        now, before = max(abs(cur["p05"]), abs(cur["p95"])), max(abs(ref["p05"]), abs(ref["p95"]))
        if not now or not before:
            return []
        ratio = now / before
    factor = limits["scale_factor"]
    if 1 / factor <= ratio <= factor:
        return []
    unit = ": did the unit change?" if _unit_like(ratio) else ""
    reason = f"{col}: {what} {_fmt(before)} -> {_fmt(now)} (x{_fmt(ratio, 3)}){unit}"
    return [_finding(limits, "scale", col, reason, now, before)]


def _unit_like(ratio: float) -> bool:
    """Whether a ratio is within 5 % of a power of ten (but 1), of 60 or of 3600, or of their inverses."""
    big = max(ratio, 1 / ratio)
    decade = 10.0 ** round(math.log10(big))
    return any(abs(big / f - 1) < 0.05 for f in (decade, *_UNIT_FACTORS) if f > 1)


def _cdf(quantiles: np.ndarray, x: float) -> float:
    """The right-continuous CDF at `x` rebuilt from equally spaced quantiles, linear between them."""
    last = len(quantiles) - 1
    i = int(np.searchsorted(quantiles, x, side="right")) - 1
    if i < 0:
        return 0.0
    if i >= last:
        return 1.0
    return (i + (x - quantiles[i]) / (quantiles[i + 1] - quantiles[i])) / last


def _psi_drift(col: str, cur: dict[str, Any], ref: dict[str, Any], limits: dict[str, Any]) -> list[dict[str, Any]]:
    """Population stability index of a numeric column over the reference's deciles, reported above the threshold
    and above the chi-squared bound of sampling noise at these sample sizes."""
    ref_q, cur_q = np.array(ref["quantiles"]), np.array(cur["quantiles"])
    edges = np.unique(ref_q[2:19:2])  # the reference's 10 %, 20 %, ..., 90 % quantiles
    r = np.diff([0.0, *(_cdf(ref_q, e) for e in edges), 1.0])
    c = np.diff([0.0, *(_cdf(cur_q, e) for e in edges), 1.0])
    r, c = np.clip(r, 1e-4, None), np.clip(c, 1e-4, None)
    psi = _round(float(((c - r) * np.log(c / r)).sum()))
    n_cur, n_ref = cur["count"] - cur["nonfinite"], ref["count"] - ref["nonfinite"]
    noise = float(stats.chi2.ppf(1 - limits["alpha"], len(r) - 1)) * (1 / n_cur + 1 / n_ref)
    if psi <= max(limits["psi"], noise):
        return []
    reason = (
        f"{col}: distribution shifted (PSI {_fmt(psi, 3)} > {_fmt(limits['psi'])}): median {_fmt(ref['median'])} ->"
        f" {_fmt(cur['median'])}, p05..p95 {_fmt(ref['p05'])}..{_fmt(ref['p95'])} -> {_fmt(cur['p05'])}.."
        f"{_fmt(cur['p95'])}"
    )
    return [_finding(limits, "psi", col, reason, psi, limits["psi"])]


# --- formatting ------------------------------------------------------------------------------------------------


def _fmt(x: float, digits: int = 6) -> str:
    """A number with `digits` significant digits, without an exponent for ordinary magnitudes: 16000, 0.42."""
    if not math.isfinite(x):
        return str(x)
    r = float(f"{x:.{digits}g}")
    if r.is_integer() and abs(r) < 1e15:
        return str(int(r))
    if abs(r) >= 1e-4:
        return np.format_float_positional(r, trim="-")
    return f"{r:.{digits}g}"


def _percent(share: float) -> str:
    """A share as a percentage with 3 significant digits."""
    return f"{_fmt(100 * share, 3)}%"


def _split_name(split: str) -> str:
    """A split's name for people; the empty split is the data set before the split stage."""
    return split or "(unsplit)"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    """A Markdown table, every cell made safe."""
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]


def _findings_table(findings: list[dict[str, Any]], empty: str) -> list[str]:
    """Findings as a Markdown table, or a sentence when there are none."""
    if not findings:
        return [empty]
    rows = [[f["severity"], f["kind"], f["column"], f["reason"]] for f in findings]
    return _table(["severity", "kind", "column", "reason"], rows)
