"""Error analysis: which slices to work on, by their gap to human-level performance times their share of data.

For a slice s of a set of N samples, with n_s samples and accuracy acc_s:

    gap_s      = max(baseline_s - acc_s, 0)      how far below the attainable level the slice is
    priority_s = gap_s * n_s / N                 the accuracy points the whole set would gain if the gap closed

so the priority *is* the estimated gain in accuracy of the whole set; `avoidable_errors` = gap_s * n_s says
the same in samples. Slices of different columns overlap (a sample is in one condition and one speaker, and
may carry tags), so priorities of different slices do not add up. The baseline level of a slice comes from
params (human-level performance measured elsewhere), from an older model's accuracy on the same slice, or
from a default.
"""

from __future__ import annotations

import warnings
from typing import Any

import pandas as pd

from curation.io import markdown_cell
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
    "baseline_source",
    "gap",
    "priority",
    "avoidable_errors",
    "small",
)
OLDER_MODEL = "older model"


def baseline_levels(
    names: list[str], baseline: dict[str, Any], older: pd.DataFrame | None = None
) -> tuple[list[float], list[str]]:
    """The baseline level of each slice and where it comes from.

    In order of precedence: the slice's own entry in `baseline` (human-level performance measured elsewhere,
    source "params"); the accuracy of an older model on the same slice (`older`: that model's slice table,
    source "older model"); `baseline["default"]` (source "default"). A slice with none of these is an error.
    """
    older_acc = {} if older is None else older.set_index("slice")["accuracy"].to_dict()
    levels, sources = [], []
    for name in names:
        if name in baseline and name != "default":
            levels.append(float(baseline[name]))
            sources.append("params")
        elif name in older_acc:
            levels.append(float(older_acc[name]))
            sources.append(OLDER_MODEL)
        elif "default" in baseline:
            levels.append(float(baseline["default"]))
            sources.append("default")
        else:
            raise ValueError(f"analyze.baseline has no entry for slice {name!r} and no 'default'")
    return levels, sources


def error_table(
    slices: pd.DataFrame, baseline: dict[str, Any], total: int, older: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The error-analysis table: one row per slice (see the module docstring for gap and priority).

    `slices`: a per-slice table of `metrics.evaluate_slices` (its "all" row included), `total` the number of
    samples measured. Columns: slice, column, value, n, share_of_data (n / all), accuracy, ci_low, ci_high,
    error_rate, share_of_errors (the slice's errors / all errors; 0 when there are none), baseline,
    baseline_source, gap, priority, avoidable_errors (gap x n: errors that closing the gap would remove),
    small. The "all" row comes first and is not ranked; the slices follow by priority, highest first, ties by
    slice name.
    """
    if ALL not in set(slices["slice"]):
        raise ValueError("error_table: the slice table has no 'all' row")
    table = slices.copy()
    unknown = sorted(set(baseline) - {"default", *table["slice"]})
    if unknown:
        warnings.warn(f"analyze.baseline names slice(s) absent from the data: {unknown}", stacklevel=2)
    errors = (table["n"] - (table["accuracy"] * table["n"]).round()).astype(int)
    all_errors = int(errors[table["slice"] == ALL].iloc[0])
    table["share_of_data"] = table["n"] / total
    table["error_rate"] = 1.0 - table["accuracy"]
    table["share_of_errors"] = errors / all_errors if all_errors else 0.0
    table["baseline"], table["baseline_source"] = baseline_levels(table["slice"].tolist(), baseline, older)
    table["gap"] = (table["baseline"] - table["accuracy"]).clip(lower=0.0)
    table["priority"] = table["gap"] * table["share_of_data"]
    table["avoidable_errors"] = table["gap"] * table["n"]
    is_all = table["slice"] == ALL
    ranked = table[~is_all].sort_values(["priority", "slice"], ascending=[False, True], kind="stable")
    return pd.concat([table[is_all], ranked], ignore_index=True)[list(COLUMNS)]


def top_targets(table: pd.DataFrame, k: int, min_size: int, among: set[str] | None = None) -> list[str]:
    """The names of up to `k` slices to improve: highest priority first, priority > 0, at least `min_size`
    samples (not small), never "all", and only slices in `among` when given (those with an augmentation
    policy)."""
    eligible = table[(table["slice"] != ALL) & (table["priority"] > 0) & (table["n"] >= min_size)]
    if among is not None:
        eligible = eligible[eligible["slice"].isin(among)]
    ranked = eligible.sort_values(["priority", "slice"], ascending=[False, True], kind="stable")
    return ranked["slice"].head(k).tolist()


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
        "avoidable errors",
        "small",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 2) + [":-:"]) + "|"]
    for r in table.to_dict("records"):
        cells = [
            markdown_cell(r["slice"]),
            str(int(r["n"])),
            f"{r['share_of_data']:.2f}",
            f"{r['accuracy']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]",
            f"{r['error_rate']:.2f}",
            f"{r['share_of_errors']:.2f}",
            f"{r['baseline']:.2f}" + (" (older model)" if r["baseline_source"] == OLDER_MODEL else ""),
            f"{r['gap']:.3f}",
            f"{r['priority']:.3f}",
            f"{r['avoidable_errors']:.0f}",
            "yes" if r["small"] else "",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
