"""Compare dataset versions on the same test samples, slice by slice, with paired intervals.

For each slice: the accuracy of every version with its bootstrap interval (the same numbers as the versions'
own evaluation), and against the first version the difference, its paired cluster-bootstrap interval over
the same samples, and the p-value of McNemar's test (clustered when rows share a source; `curation.stats`).
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from augment.rng import derive_seed
from curation.io import atomic_path
from curation.metrics import CLUSTER_COLUMN, cluster_keys, evaluate_slices
from curation.slices import slice_mask, slice_names
from curation.stats import paired_delta


class CompareError(ValueError):
    """Versions that cannot be compared (different test samples)."""


def compare_versions(
    predictions: dict[str, pd.DataFrame],
    slice_cols: list[str],
    seed: int,
    labels: list[str],
    targets: list[str] | None = None,
    n_boot: int = 1000,
    alpha: float = 0.05,
    cluster_column: str | None = CLUSTER_COLUMN,
) -> pd.DataFrame:
    """One row per slice: accuracy per version, and delta vs. the first version with CI and p-value.

    A change is significant when p < alpha and the paired interval excludes 0."""
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
    per_version = {
        v: evaluate_slices(
            aligned[v], slice_cols, labels, seed, n_boot=n_boot, cluster_column=cluster_column
        ).slices.set_index("slice")
        for v in versions
    }
    keys = cluster_keys(first, cluster_column)
    rows: list[dict[str, Any]] = []
    for name in slice_names(first, slice_cols):
        mask = slice_mask(first, name).to_numpy()
        row: dict[str, Any] = {"slice": name, "n": int(mask.sum()), "targeted": name in targets}
        for v in versions:
            r = per_version[v].loc[name]
            row |= {f"acc_{v}": r["accuracy"], f"ci_low_{v}": r["ci_low"], f"ci_high_{v}": r["ci_high"]}
        for v in versions[1:]:
            d = paired_delta(
                aligned[versions[0]]["correct"].to_numpy()[mask],
                aligned[v]["correct"].to_numpy()[mask],
                seed=derive_seed(seed, "delta", name),
                clusters=None if keys is None else keys[mask],
                n_boot=n_boot,
            )
            significant = d["p"] < alpha and not (d["ci_low"] <= 0 <= d["ci_high"])
            row |= {
                f"delta_{v}": d["delta"],
                f"delta_low_{v}": d["ci_low"],
                f"delta_high_{v}": d["ci_high"],
                f"p_{v}": d["p"],
                f"significant_{v}": bool(significant),
            }
        rows.append(row)
    return pd.DataFrame(rows)


def audit(table: pd.DataFrame, versions: list[str], protected: list[str], tolerance: float) -> list[str]:
    """The audit gate: one message per protected slice that a later version regresses beyond `tolerance`.

    Significance-aware: a drop fails the gate only when it is larger than the tolerance and significant
    (p < alpha and the paired interval below 0), so that noise on a small slice does not block a
    version, and a real regression cannot hide behind a point estimate. A protected slice missing from the
    table is a failure too (a typo must not switch the gate off).
    """
    if tolerance < 0:
        raise CompareError(f"audit tolerance {tolerance}: must be >= 0")
    by_slice = table.set_index("slice")
    failures = [
        f"protected slice {name!r} is not in the comparison" for name in protected if name not in by_slice.index
    ]
    for name in (n for n in protected if n in by_slice.index):
        r = by_slice.loc[name]
        for v in versions[1:]:
            if r[f"delta_{v}"] < -tolerance and r[f"significant_{v}"]:
                failures.append(
                    f"protected slice {name!r} regressed in {v}: accuracy {r[f'acc_{versions[0]}']:.3f} -> "
                    f"{r[f'acc_{v}']:.3f} (delta {r[f'delta_{v}']:+.3f} [{r[f'delta_low_{v}']:+.3f}, "
                    f"{r[f'delta_high_{v}']:+.3f}], p {r[f'p_{v}']:.3g}), beyond the tolerance {tolerance}"
                )
    return failures


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
    legend = (
        "\n*: slice targeted by augmentation. !: significant change "
        "(McNemar p < 0.05, clustered by source; CI excludes 0).\n"
    )
    return "\n".join(lines) + "\n" + legend


def plot_comparison(table: pd.DataFrame, versions: list[str], path: str | os.PathLike[str], title: str) -> None:
    """Per-slice accuracy of each version with its 95% interval, as a PNG (targeted slices marked *)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = table.iloc[::-1].reset_index(drop=True)
    height = 0.8 / len(versions)
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.2))
    for k, v in enumerate(versions):
        y = rows.index + (k - (len(versions) - 1) / 2) * height
        acc = rows[f"acc_{v}"]
        err = [acc - rows[f"ci_low_{v}"], rows[f"ci_high_{v}"] - acc]
        ax.barh(y, acc, height=height, xerr=err, capsize=2, label=v)
    ax.set_yticks(rows.index, [("*" if t else "") + s for s, t in zip(rows["slice"], rows["targeted"], strict=True)])
    ax.set_xlim(0, 1)
    ax.set_xlabel("test accuracy (95% bootstrap interval)")
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
