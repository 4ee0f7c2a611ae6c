"""Compare dataset versions on the same test samples, slice by slice, with paired intervals.

For each slice: the accuracy of every version with its bootstrap interval, and against the first version the
difference, its paired-bootstrap interval over the same samples, and McNemar's exact p-value.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from curation.metrics import bootstrap_ci, paired_delta
from curation.slices import slice_mask, slice_names


class CompareError(ValueError):
    """Versions that cannot be compared (different test samples)."""


def compare_versions(
    predictions: dict[str, pd.DataFrame],
    slice_cols: list[str],
    seed: int,
    targets: list[str] | None = None,
    n_boot: int = 1000,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """One row per slice: accuracy per version, and delta vs. the first version with CI and p-value."""
    versions = list(predictions)
    if len(versions) < 2:
        raise CompareError("compare needs at least two versions")
    first = predictions[versions[0]].sort_values("id").reset_index(drop=True)
    aligned = {versions[0]: first}
    for v in versions[1:]:
        other = predictions[v].sort_values("id").reset_index(drop=True)
        if len(other) != len(first) or not (other["id"].to_numpy() == first["id"].to_numpy()).all():
            raise CompareError(f"versions {versions[0]} and {v} were not evaluated on the same test samples")
        aligned[v] = other
    targets = targets or []
    rows: list[dict[str, Any]] = []
    for name in slice_names(first, slice_cols):
        mask = slice_mask(first, name).to_numpy()
        row: dict[str, Any] = {"slice": name, "n": int(mask.sum()), "targeted": name in targets}
        for v in versions:
            acc, lo, hi = bootstrap_ci(aligned[v]["correct"].to_numpy()[mask], seed=seed, n_boot=n_boot)
            row |= {f"acc_{v}": acc, f"ci_low_{v}": lo, f"ci_high_{v}": hi}
        for v in versions[1:]:
            d = paired_delta(
                aligned[versions[0]]["correct"].to_numpy()[mask],
                aligned[v]["correct"].to_numpy()[mask],
                seed=seed,
                n_boot=n_boot,
            )
            significant = d["p_mcnemar"] < alpha and not (d["ci_low"] <= 0 <= d["ci_high"])
            row |= {
                f"delta_{v}": d["delta"],
                f"delta_low_{v}": d["ci_low"],
                f"delta_high_{v}": d["ci_high"],
                f"p_{v}": d["p_mcnemar"],
                f"significant_{v}": bool(significant),
            }
        rows.append(row)
    return pd.DataFrame(rows)


def to_markdown(table: pd.DataFrame, versions: list[str]) -> str:
    """The comparison as a Markdown table; targeted slices marked with *, significant changes with !"""
    head = ["slice", "n", *[f"acc {v} [95% CI]" for v in versions]]
    head += [f"Δ {v} vs {versions[0]} [95% CI]" for v in versions[1:]] + [f"p {v}" for v in versions[1:]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table.to_dict("records"):
        cells = [("*" if r["targeted"] else "") + r["slice"], str(r["n"])]
        cells += [f"{r[f'acc_{v}']:.3f} [{r[f'ci_low_{v}']:.3f}, {r[f'ci_high_{v}']:.3f}]" for v in versions]
        for v in versions[1:]:
            mark = " !" if r[f"significant_{v}"] else ""
            cells.append(f"{r[f'delta_{v}']:+.3f} [{r[f'delta_low_{v}']:+.3f}, {r[f'delta_high_{v}']:+.3f}]{mark}")
        cells += [f"{r[f'p_{v}']:.3g}" for v in versions[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    legend = "\n*: slice targeted by augmentation. !: significant change (McNemar p < 0.05, CI excludes 0).\n"
    return "\n".join(lines) + "\n" + legend
