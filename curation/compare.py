"""Compare dataset versions on the same test samples, slice by slice, with paired intervals.

For each slice: the accuracy of every version with its bootstrap interval (the same numbers as the versions'
own evaluation), and against the first version the difference, its paired cluster-bootstrap interval over
the same samples, and the p-value of McNemar's test (clustered when rows share a source; `curation.stats`).
The versions must hold the same test samples (ids and labels). The audit gate fails a version that
significantly drops a protected slice beyond a tolerance; `rank_by_change` orders the table by the largest
significant change.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from typing import Any

import numpy as np
import pandas as pd

from augment.rng import derive_seed
from curation.io import atomic_path, markdown_cell
from curation.metrics import CLUSTER_COLUMN, cluster_keys, evaluate_slices
from curation.slices import slice_mask, slice_names
from curation.stats import paired_delta


class CompareError(ValueError):
    """Versions that cannot be compared (different test samples)."""


def _examples(ids: set[str]) -> str:
    return f" (e.g. {', '.join(repr(i) for i in sorted(ids)[:3])})" if ids else ""


def align(predictions: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Every version's predictions sorted by id, after checking that all of them hold the same test samples
    (the same ids, each once, with the same labels); a CompareError names the two versions that differ."""
    versions = list(predictions)
    first = predictions[versions[0]].sort_values("id").reset_index(drop=True)
    aligned = {versions[0]: first}
    ids = first["id"].astype(str)
    if ids.duplicated().any():
        repeated = set(ids[ids.duplicated()])
        raise CompareError(f"version {versions[0]}: {len(repeated)} id(s) appear twice{_examples(repeated)}")
    for v in versions[1:]:
        other = predictions[v].sort_values("id").reset_index(drop=True)
        other_ids = other["id"].astype(str)
        if len(other) != len(first) or not (other_ids.to_numpy() == ids.to_numpy()).all():
            only_first, only_other = set(ids) - set(other_ids), set(other_ids) - set(ids)
            raise CompareError(
                f"versions {versions[0]} and {v} were not evaluated on the same test samples: {len(first)} and "
                f"{len(other)} rows, {len(only_first)} id(s) only in {versions[0]}{_examples(only_first)}, "
                f"{len(only_other)} only in {v}{_examples(only_other)}"
            )
        relabeled = (other["label"].astype(str) != first["label"].astype(str)).to_numpy()
        if relabeled.any():
            raise CompareError(
                f"versions {versions[0]} and {v} give {int(relabeled.sum())} test sample(s) different labels"
                f"{_examples(set(ids[relabeled]))}: the test set changed between them"
            )
        aligned[v] = other
    return aligned


def version_labels(predictions: dict[str, pd.DataFrame], configured: list[Any] | None) -> list[str]:
    """The class labels of a comparison: params' `labels` when set, else every label and prediction seen."""
    seen = set().union(*(set(p["label"].astype(str)) | set(p["pred"].astype(str)) for p in predictions.values()))
    return [str(x) for x in configured or sorted(seen)]


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
    aligned = align(predictions)
    first = aligned[versions[0]]
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


def regressions(
    table: pd.DataFrame, versions: list[str], protected: list[str], tolerance: float
) -> list[tuple[str, str]]:
    """(slice, version) of every protected slice that a later version drops by more than `tolerance`
    (accuracy points), significantly (p < alpha and the paired interval below 0)."""
    if tolerance < 0:
        raise CompareError(f"audit tolerance {tolerance}: must be >= 0")
    by_slice = table.set_index("slice")
    return [
        (name, v)
        for name in protected
        if name in by_slice.index
        for v in versions[1:]
        if by_slice.loc[name, f"delta_{v}"] < -tolerance and by_slice.loc[name, f"significant_{v}"]
    ]


def audit(table: pd.DataFrame, versions: list[str], protected: list[str], tolerance: float) -> list[str]:
    """The audit gate: one message per protected slice that a later version regresses beyond `tolerance`.

    Significance-aware: a drop fails the gate only when it is larger than the tolerance and significant
    (p < alpha and the paired interval below 0), so that noise on a small slice does not block a
    version, and a real regression cannot hide behind a point estimate. A protected slice missing from the
    table is a failure too (a typo must not switch the gate off).
    """
    by_slice = table.set_index("slice")
    failures = [
        f"protected slice {name!r} is not in the comparison" for name in protected if name not in by_slice.index
    ]
    for name, v in regressions(table, versions, protected, tolerance):
        r = by_slice.loc[name]
        failures.append(
            f"protected slice {name!r} regressed in {v}: accuracy {r[f'acc_{versions[0]}']:.3f} -> "
            f"{r[f'acc_{v}']:.3f} (delta {r[f'delta_{v}']:+.3f} [{r[f'delta_low_{v}']:+.3f}, "
            f"{r[f'delta_high_{v}']:+.3f}], p {r[f'p_{v}']:.3g}), beyond the tolerance {tolerance}"
        )
    return failures


def rank_by_change(table: pd.DataFrame, versions: list[str]) -> pd.DataFrame:
    """The table sorted by the largest significant change against the first version (the largest |delta|
    among the later versions whose change is significant), slices without one after them by their largest
    |delta|; ties keep the table's order."""
    later = versions[1:]
    size = table[[f"delta_{v}" for v in later]].abs().to_numpy(dtype=float)
    significant = table[[f"significant_{v}" for v in later]].to_numpy(dtype=bool)
    largest_significant = np.where(significant, size, -1.0).max(axis=1)
    order = np.lexsort((np.arange(len(table)), -size.max(axis=1), -largest_significant))
    return table.iloc[order].reset_index(drop=True)


def to_markdown(
    table: pd.DataFrame,
    versions: list[str],
    protected: Collection[str] = (),
    regressed: Collection[tuple[str, str]] = (),
) -> str:
    """The comparison as a Markdown table; targeted slices marked with *, significant changes with !;
    `protected` slices in bold, and the changes of `regressed` (slice, version) pairs marked REGRESSION."""
    head = ["slice", "n", *[f"acc {v} [95% CI]" for v in versions]]
    head += [f"Δ {v} vs {versions[0]} [95% CI]" for v in versions[1:]] + [f"p {v}" for v in versions[1:]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table.to_dict("records"):
        name = ("*" if r["targeted"] else "") + markdown_cell(r["slice"])
        cells = [f"**{name}**" if r["slice"] in protected else name, str(r["n"])]
        cells += [f"{r[f'acc_{v}']:.3f} [{r[f'ci_low_{v}']:.3f}, {r[f'ci_high_{v}']:.3f}]" for v in versions]
        for v in versions[1:]:
            mark = " !" if r[f"significant_{v}"] else ""
            mark += " REGRESSION" if (r["slice"], v) in regressed else ""
            cells.append(f"{r[f'delta_{v}']:+.3f} [{r[f'delta_low_{v}']:+.3f}, {r[f'delta_high_{v}']:+.3f}]{mark}")
        cells += [f"{r[f'p_{v}']:.3g}" for v in versions[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    legend = (
        "\n*: slice targeted by augmentation. !: significant change "
        "(McNemar p < 0.05, clustered by source; CI excludes 0).\n"
    )
    if protected:
        legend += "**bold**: protected slice (audit.protected); REGRESSION: a significant drop beyond the tolerance.\n"
    return "\n".join(lines) + "\n" + legend


def draw_comparison(plt: Any, table: pd.DataFrame, versions: list[str], title: str) -> Any:
    """The figure of `plot_comparison`, drawn with `plt` (matplotlib.pyplot): per-slice accuracy of each
    version with its 95% interval, the table's first row on top, targeted slices marked *."""
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
    return fig


def plot_comparison(table: pd.DataFrame, versions: list[str], path: str | os.PathLike[str], title: str) -> None:
    """Per-slice accuracy of each version with its 95% interval, as a PNG (targeted slices marked *)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = draw_comparison(plt, table, versions, title)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
