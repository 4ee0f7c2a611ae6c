"""The split stage's library: assign every sample to train, dev or test.

Stratified by label (each label's share in every split close to the fractions), groups kept on one side
(all samples of a speaker or of a source recording), and deterministic: the assignment depends only on the
seed, the ids, labels and groups, never on the row order. A column that already holds the split (such as an
official one) is honoured; when it has no dev part, dev is carved out of its train part by the same rules.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from augment.rng import derive_seed
from curation.manifest import SPLITS


class SplitError(ValueError):
    """Samples or settings that cannot be split; the message names the samples and the reason."""


def assign_splits(
    df: pd.DataFrame,
    seed: int,
    dev_fraction: float,
    test_fraction: float,
    fixed_column: str | None = None,
    group_column: str | None = None,
    dup_column: str | None = None,
    fixed_map: dict[str, str] | None = None,
) -> pd.DataFrame:
    """A copy of the manifest `df` (rows in their order) with `split` filled with train / dev / test.

    `dup_column` (validate's `dup_group`) joins units that share a duplicate cluster, so that exact and near
    duplicates never straddle the splits this function places (a given split's leaks are validate's to report).

    Units (a group, or a sample when there are no groups) are placed one by one, largest first and in an
    order drawn from the seed, on the split where they bring the per-label counts closest to the targets
    (fraction x label count). With `fixed_column`, its values must be train/dev/test or train/test, after
    `fixed_map` renames the data's own names (e.g. {val: test, label_book: train}).
    """
    _check_settings(df, dev_fraction, test_fraction, fixed_column, group_column, dup_column)
    work = df.sort_values("id", kind="stable")
    ids = work["id"].astype(str)
    labels = work["label"].astype(str)
    groups = ids if group_column is None else work[group_column].astype(str)
    units = groups if dup_column is None else _join_units(groups, work[dup_column].astype(str))
    counts = labels.value_counts()
    if fixed_column is None:
        targets = {
            "train": (1.0 - dev_fraction - test_fraction) * counts,
            "dev": dev_fraction * counts,
            "test": test_fraction * counts,
        }
        split = _place(labels, units, targets, seed)
        needed = [name for name, target in targets.items() if target.sum() > 0]
    else:
        split = _fixed(work, ids, groups, fixed_column, group_column, fixed_map or {})
        needed = []
        train = split == "train"
        if "dev" not in set(split) and dev_fraction > 0:
            dev = dev_fraction * counts
            if dev.sum() > train.sum():
                raise SplitError(
                    f"{fixed_column}: {int(train.sum())} train samples cannot give a dev part of "
                    f"{dev_fraction} of all {len(work)} samples"
                )
            in_train = labels[train].value_counts().reindex(counts.index, fill_value=0)
            targets = {"train": (in_train - dev).clip(lower=0), "dev": dev}
            split[train] = _place(labels[train], units[train], targets, seed)
            needed = ["dev"]
    empty = [name for name in needed if name not in set(split)]
    if empty:
        raise SplitError(f"too few samples or groups ({units.nunique()}) to fill the {'/'.join(empty)} split")
    out = df.copy()
    out["split"] = df["id"].astype(str).map(dict(zip(ids, split, strict=True)))
    return out


def _check_settings(
    df: pd.DataFrame,
    dev_fraction: float,
    test_fraction: float,
    fixed_column: str | None,
    group_column: str | None,
    dup_column: str | None = None,
) -> None:
    """Fractions in range, the needed columns present, ids unique and labels present."""
    if not (0 <= dev_fraction < 1 and 0 <= test_fraction < 1 and dev_fraction + test_fraction < 1):
        raise SplitError(
            f"dev_fraction {dev_fraction} and test_fraction {test_fraction}: each must be in [0, 1) "
            "and together below 1"
        )
    missing = [c for c in ("id", "label", fixed_column, group_column, dup_column) if c and c not in df.columns]
    if missing:
        raise SplitError(f"no column(s) {missing} to split by; the manifest has {list(df.columns)}")
    if df.empty:
        raise SplitError("no samples to split")
    ids = df["id"].astype(str)
    duplicated = sorted(set(ids[ids.duplicated()]))
    if duplicated:
        raise SplitError(f"duplicate id(s), each must name one sample: {duplicated}")
    for col in (c for c in ("label", group_column) if c):
        empty = ids[df[col].isna() | (df[col].astype(str) == "")]
        if not empty.empty:
            raise SplitError(f"sample(s) {sorted(empty)}: empty {col}")


def _fixed(
    work: pd.DataFrame,
    ids: pd.Series,
    units: pd.Series,
    fixed_column: str,
    group_column: str | None,
    fixed_map: dict[str, str],
) -> pd.Series:
    """The given split (renamed by `fixed_map`), checked: every value train/dev/test, no group on two sides."""
    split = work[fixed_column].astype(str).replace({str(k): str(v) for k, v in fixed_map.items()})
    bad = split[~split.isin(SPLITS)]
    if not bad.empty:
        raise SplitError(
            f"{fixed_column} must hold one of {SPLITS} for every sample:\n  "
            + "\n  ".join(f"sample {ids[i]!r}: {value!r}" for i, value in bad.items())
        )
    if group_column is not None:
        sides = split.groupby(units).unique()
        straddling = sides[sides.map(len) > 1]
        if not straddling.empty:
            raise SplitError(
                f"{fixed_column} puts these {group_column} groups on more than one side:\n  "
                + "\n  ".join(f"{unit!r}: {sorted(v)}" for unit, v in straddling.items())
            )
    return split.copy()


def _join_units(units: pd.Series, clusters: pd.Series) -> pd.Series:
    """Units merged where a cluster spans several (union-find); each merged unit is named by its smallest
    member, so the result does not depend on the row order."""
    parent: dict[str, str] = {u: u for u in units}

    def root(u: str) -> str:
        while parent[u] != u:
            parent[u] = parent[parent[u]]
            u = parent[u]
        return u

    for members in units.groupby(clusters.to_numpy()).unique():
        first, *rest = sorted(members)
        for other in rest:
            a, b = sorted((root(first), root(other)))
            parent[b] = a
    return units.map(root)


def _place(labels: pd.Series, units: pd.Series, targets: dict[str, pd.Series], seed: int) -> pd.Series:
    """Greedy stratified placement of whole units, each where it least increases the squared deviations.

    The deviations are per split and label, (assigned - target) / sqrt(label count) so that rare labels
    weigh as much as common ones, plus per split overall, (assigned - target) / sqrt(samples), which keeps
    the split sizes on target when every label has only a few samples. Splits with no target stay empty.
    """
    table = pd.crosstab(units, labels)
    names = [name for name, target in targets.items() if target.sum() > 0]
    target = np.stack([targets[name].reindex(table.columns, fill_value=0).to_numpy(float) for name in names])
    total_target = target.sum(axis=1)
    weight = 1.0 / table.sum(axis=0).to_numpy(float)
    cells = table.to_numpy(float)
    sizes = cells.sum(axis=1)
    keys = [(-sizes[i], derive_seed(seed, "split", unit), unit) for i, unit in enumerate(table.index)]
    assigned = np.zeros_like(target)
    side: dict[str, str] = {}
    for i in sorted(range(len(keys)), key=keys.__getitem__):
        c, m = cells[i], sizes[i]
        by_label = ((2.0 * c * (assigned - target) + c**2) * weight).sum(axis=1)
        overall = (2.0 * m * (assigned.sum(axis=1) - total_target) + m**2) / len(labels)
        best = int(np.argmin(by_label + overall))
        assigned[best] += c
        side[table.index[i]] = names[best]
    return units.map(side)
