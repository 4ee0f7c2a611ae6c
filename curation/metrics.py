"""Per-slice metrics, each with a cluster-bootstrap 95% interval: accuracy, macro-F1, per-class precision /
recall / F1, the confusion matrix, and false-positive / false-negative rates of one class named in params.

Every metric is a function of the slice's confusion matrix, so one bootstrap of confusion matrices gives
intervals for all of them at once (`curation.stats`: clusters of rows sharing a source are resampled
together). Every slice gets its own generator derived from (seed, slice name), so a row does not depend on
which other slices are measured or on the row order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from augment.rng import derive_seed
from curation.slices import ALL, AND, as_text, slice_mask, slice_names, terms
from curation.stats import LEVEL, all_or_none_interval, percentiles, resample_sums

PRED_COLUMNS = ("id", "label", "pred", "correct")
CLUSTER_COLUMN = "source_id"


def check_pred(pred: pd.DataFrame, columns: list[str]) -> None:
    """Refuse an empty predictions frame, or one without the columns the tables need."""
    missing = [c for c in (*PRED_COLUMNS, *columns) if c not in pred.columns]
    if missing:
        raise ValueError(f"predictions lack column(s) {missing}; they have {list(pred.columns)}")
    if pred.empty:
        raise ValueError("predictions are empty")
    stale = pred["correct"].astype(bool) != (pred["label"].astype(str) == pred["pred"].astype(str))
    if stale.any():
        raise ValueError(
            f"predictions: 'correct' disagrees with label == pred for {int(stale.sum())} row(s), e.g. id "
            f"{pred.loc[stale, 'id'].iloc[0]!r}"
        )


def cluster_keys(pred: pd.DataFrame, column: str | None) -> np.ndarray | None:
    """The resampling unit of each row: its `column` value (rows made from one source share it), or its own id
    where that is missing or empty; None when there is no such column (every row its own unit)."""
    if not column or column not in pred.columns:
        return None
    source = pred[column]
    present = (source.notna() & (as_text(source) != "")).to_numpy()
    return np.where(present, "s:" + as_text(source), "i:" + as_text(pred["id"])).astype(str)


def scores(cm: np.ndarray, empty: float = 0.0) -> dict[str, np.ndarray]:
    """Metrics of confusion matrices cm (..., C, C) (rows: true class, columns: predicted).

    accuracy (...); per class (..., C): precision, recall, f1 = 2 tp / (support + predicted), support;
    macro_f1 (...) averaged over the classes with samples in each matrix (a class absent from a slice has no
    recall). An empty denominator gives `empty`: 0 for a reported value (a class never predicted has
    precision 0), NaN for bootstrap replicates, so that a replicate that happens to miss a class does not
    drag that class's interval to 0.
    """
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    support, predicted, total = cm.sum(axis=-1), cm.sum(axis=-2), cm.sum(axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, empty)
        recall = np.where(support > 0, tp / support, empty)
        f1 = np.where(support + predicted > 0, 2 * tp / (support + predicted), empty)
        accuracy = np.where(total > 0, tp.sum(axis=-1) / total, np.nan)
        present = support > 0
        macro = np.where(present.any(axis=-1), np.where(present, f1, 0.0).sum(axis=-1) / present.sum(axis=-1), 0.0)
    return {"accuracy": accuracy, "precision": precision, "recall": recall, "f1": f1, "support": support,
            "macro_f1": macro}  # fmt: skip


def error_rates(cm: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """One-vs-rest false-positive rate (others predicted as class k / others) and false-negative rate (class k
    missed / class k) of confusion matrices (..., C, C); NaN where the denominator is empty."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = cm[..., k, k]
    support, predicted, total = cm[..., k, :].sum(axis=-1), cm[..., :, k].sum(axis=-1), cm.sum(axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        fpr = np.where(total - support > 0, (predicted - tp) / (total - support), np.nan)
        fnr = np.where(support > 0, (support - tp) / support, np.nan)
    return {"fpr": fpr, "fnr": fnr}


def _interval(name: str, point: float, boot: np.ndarray, level: float) -> dict[str, float]:
    lo, hi = percentiles(boot, level)
    return {name: float(point), f"{name}_low": float(lo), f"{name}_high": float(hi)}


@dataclass
class SliceReport:
    """The per-slice evaluation of one prediction set.

    slices: one row per slice: slice, column, value, n, clusters, accuracy, ci_low, ci_high, macro_f1,
      macro_f1_low, macro_f1_high, [fpr*, fnr* of the focus class], small (n < min_size: reported, not
      hidden, but too few samples to act on).
    classes: one row per slice and class: slice, class, support, precision, recall, f1, each with _low/_high.
    confusion: the non-zero confusion cells per slice: slice, actual, predicted, count.
    """

    slices: pd.DataFrame
    classes: pd.DataFrame
    confusion: pd.DataFrame


def evaluate_slices(
    pred: pd.DataFrame,
    specs: list[str],
    labels: list[str],
    seed: int,
    *,
    n_boot: int = 1000,
    min_size: int = 20,
    cluster_column: str | None = CLUSTER_COLUMN,
    focus: str | None = None,
    level: float = LEVEL,
) -> SliceReport:
    """Measure "all" and every slice of `specs` (see `curation.slices`) on a predictions frame.

    `pred` has columns id, label, pred, correct and the spec columns; labels compare as text and must be in
    `labels`. Rows sharing `cluster_column` (when present) are resampled together. `focus`: a class whose
    one-vs-rest false-positive and false-negative rates are added per slice.
    """
    specs_cols = [c.strip() for spec in specs for c in spec.split("&") if c.strip() != "tag"]
    check_pred(pred, specs_cols)
    labels = [str(x) for x in labels]
    index = {label: k for k, label in enumerate(labels)}
    truth, guess = pred["label"].astype(str), pred["pred"].astype(str)
    unknown = sorted((set(truth) | set(guess)) - set(index))
    if unknown:
        raise ValueError(f"predictions hold label(s) {unknown[:10]} that are not among the labels {labels}")
    if focus is not None and str(focus) not in index:
        raise ValueError(f"focus class {focus!r} is not among the labels {labels}")
    c = len(labels)
    cells = (truth.map(index).to_numpy() * c + guess.map(index).to_numpy()).astype(np.int64)
    keys = cluster_keys(pred, cluster_column)
    slice_rows: list[dict[str, Any]] = []
    class_rows: list[dict[str, Any]] = []
    confusion_rows: list[dict[str, Any]] = []
    for name in slice_names(pred, specs):
        mask = slice_mask(pred, name).to_numpy()
        cell, n = cells[mask], int(mask.sum())
        cluster = np.arange(n) if keys is None else np.unique(keys[mask], return_inverse=True)[1].reshape(-1)
        per_cluster = sparse.csr_matrix((np.ones(n), (cluster, cell)), shape=(int(cluster.max()) + 1, c * c))
        cm = np.bincount(cell, minlength=c * c).reshape(c, c).astype(np.float64)
        boot = resample_sums(per_cluster, derive_seed(seed, "slice", name), n_boot).reshape(-1, c, c)
        point, reps = scores(cm), scores(boot, empty=np.nan)
        parts = terms(name)
        row: dict[str, Any] = {
            "slice": name,
            "column": AND.join(t[0] for t in parts) if parts else None,
            "value": AND.join(t[1] for t in parts) if parts else None,
            "n": n,
            "clusters": int(per_cluster.shape[0]),
        }
        acc = _interval("accuracy", point["accuracy"], reps["accuracy"], level)
        if acc["accuracy"] in (0.0, 1.0):
            acc["accuracy_low"], acc["accuracy_high"] = all_or_none_interval(acc["accuracy"], row["clusters"], level)
        row |= {"accuracy": acc["accuracy"], "ci_low": acc["accuracy_low"], "ci_high": acc["accuracy_high"]}
        row |= _interval("macro_f1", point["macro_f1"], reps["macro_f1"], level)
        if focus is not None:
            k = index[str(focus)]
            rates, rate_reps = error_rates(cm, k), error_rates(boot, k)
            for metric in ("fpr", "fnr"):
                row |= _interval(metric, rates[metric], rate_reps[metric], level)
        row["small"] = n < min_size
        slice_rows.append(row)
        for k, label in enumerate(labels):
            crow: dict[str, Any] = {"slice": name, "class": label, "support": int(cm[k].sum())}
            for metric in ("precision", "recall", "f1"):
                crow |= _interval(metric, point[metric][k], reps[metric][:, k], level)
            class_rows.append(crow)
        for t, p in zip(*np.nonzero(cm), strict=True):
            confusion_rows.append({"slice": name, "actual": labels[t], "predicted": labels[p], "count": int(cm[t, p])})
    return SliceReport(pd.DataFrame(slice_rows), pd.DataFrame(class_rows), pd.DataFrame(confusion_rows))


def summary(report: SliceReport) -> dict[str, Any]:
    """The per-slice metrics as plain JSON values: {slice: {n, accuracy, ci_low, ..., small}} plus, for "all",
    the per-class scores."""
    out: dict[str, Any] = {"slices": {}, "classes": {}}
    for r in report.slices.to_dict("records"):
        out["slices"][r["slice"]] = {k: v for k, v in r.items() if k not in ("slice", "column", "value")}
    overall = report.classes[report.classes["slice"] == ALL]
    for r in overall.to_dict("records"):
        out["classes"][r["class"]] = {k: v for k, v in r.items() if k not in ("slice", "class")}
    return out
