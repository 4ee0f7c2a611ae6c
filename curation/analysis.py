"""Error analysis: which slices to work on, by their gap to human-level performance times their share of data.

For a slice s of a set of N samples, with n_s samples and accuracy acc_s:

    gap_s      = max(baseline_s - acc_s, 0)      how far below the attainable level the slice is
    priority_s = gap_s * n_s / N                 the accuracy points the whole set would gain if the gap closed

so the priority *is* the estimated gain (one column, not two). Slices of different columns overlap (a sample
is in one condition and one speaker), so priorities of different columns do not add up.
"""

from __future__ import annotations

import warnings
from typing import Any

import pandas as pd

from curation.metrics import slice_table
from curation.slices import ALL

COLUMNS = (
    "slice",
    "column",
    "value",
    "n",
    "share_of_data",
    "accuracy",
    "ci_low",
    "ci_high",
    "error_rate",
    "share_of_errors",
    "baseline",
    "gap",
    "priority",
    "small",
)


def _baseline_for(baseline: dict[str, float], name: str) -> float:
    """The human-level accuracy of slice `name`: its own entry, else "default"."""
    if name in baseline:
        return float(baseline[name])
    if "default" not in baseline:
        raise ValueError(f"analyze.baseline has no entry for slice {name!r} and no 'default'")
    return float(baseline["default"])


def error_table(
    pred: pd.DataFrame, slice_cols: list[str], baseline: dict[str, float], seed: int, min_size: int, n_boot: int = 1000
) -> pd.DataFrame:
    """The error-analysis table: one row per slice (see the module docstring for gap and priority).

    `pred` as for `metrics.slice_table`; `baseline` maps "column=value" (or "all") to a human-level accuracy,
    with "default" for the rest. Columns: slice, column, value, n, share_of_data (n / all), accuracy, ci_low,
    ci_high, error_rate, share_of_errors (the slice's errors / all errors; 0 when there are none), baseline,
    gap, priority, small (n < min_size). The "all" row comes first and is not ranked; the slices follow by
    priority, highest first, ties by slice name.
    """
    table = slice_table(pred, slice_cols, seed=seed, n_boot=n_boot, min_size=min_size)
    unknown = sorted(set(baseline) - {"default", *table["slice"]})
    if unknown:
        warnings.warn(f"analyze.baseline names slice(s) absent from the data: {unknown}", stacklevel=2)
    total = len(pred)
    errors = (table["n"] - (table["accuracy"] * table["n"]).round()).astype(int)
    all_errors = int(errors[table["slice"] == ALL].iloc[0])
    table["share_of_data"] = table["n"] / total
    table["error_rate"] = 1.0 - table["accuracy"]
    table["share_of_errors"] = errors / all_errors if all_errors else 0.0
    table["baseline"] = [_baseline_for(baseline, name) for name in table["slice"]]
    table["gap"] = (table["baseline"] - table["accuracy"]).clip(lower=0.0)
    table["priority"] = table["gap"] * table["share_of_data"]
    is_all = table["slice"] == ALL
    ranked = table[~is_all].sort_values(["priority", "slice"], ascending=[False, True], kind="stable")
    return pd.concat([table[is_all], ranked], ignore_index=True)[list(COLUMNS)]


def top_targets(table: pd.DataFrame, k: int, min_size: int) -> list[str]:
    """The names of up to `k` slices to improve: highest priority first, priority > 0, at least `min_size`
    samples (not small), never "all"."""
    eligible = table[(table["slice"] != ALL) & (table["priority"] > 0) & (table["n"] >= min_size)]
    ranked = eligible.sort_values(["priority", "slice"], ascending=[False, True], kind="stable")
    return ranked["slice"].head(k).tolist()


def _cell(value: Any) -> str:
    """Text for a Markdown cell, with pipes escaped."""
    return str(value).replace("|", "\\|")


def to_markdown(table: pd.DataFrame) -> str:
    """The error table as a Markdown table, accuracy shown as "0.83 [0.78, 0.88]" (95% interval)."""
    head = [
        "slice",
        "n",
        "share of data",
        "accuracy [95% CI]",
        "error rate",
        "share of errors",
        "baseline",
        "gap",
        "priority",
        "small",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 2) + [":-:"]) + "|"]
    for r in table.to_dict("records"):
        cells = [
            _cell(r["slice"]),
            str(int(r["n"])),
            f"{r['share_of_data']:.2f}",
            f"{r['accuracy']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]",
            f"{r['error_rate']:.2f}",
            f"{r['share_of_errors']:.2f}",
            f"{r['baseline']:.2f}",
            f"{r['gap']:.3f}",
            f"{r['priority']:.3f}",
            "yes" if r["small"] else "",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
