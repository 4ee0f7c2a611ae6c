"""Per-slice accuracy with bootstrap intervals, per-class scores, and paired comparisons of two models.

Bootstraps sample the resampled counts directly: drawing n samples with replacement from n 0/1 outcomes with
k ones gives Binomial(n, k/n) ones, and for paired outcomes Multinomial(n, cell shares) over the four
(right/wrong x right/wrong) cells. That is the same distribution as resampling indices, at O(n_boot) cost.
Every slice gets its own generator derived from (seed, slice name), so a row does not depend on the others.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from augment.rng import derive_seed
from curation.slices import ALL, slice_mask, slice_names

PRED_COLUMNS = ("id", "label", "pred", "correct")


def _outcomes(correct: np.ndarray, what: str) -> np.ndarray:
    """A 1-d bool array of per-sample outcomes, refusing empty input and values other than 0/1."""
    arr = np.asarray(correct)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{what}: expected a non-empty 1-d array of per-sample outcomes, got shape {arr.shape}")
    if arr.dtype != bool:
        if not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{what}: outcomes must be booleans (or 0/1)")
        arr = arr.astype(bool)
    return arr


def _percentiles(stats: np.ndarray, level: float) -> tuple[float, float]:
    """The central `level` percentile interval of bootstrap statistics."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(stats, [tail, 1.0 - tail])
    return float(lo), float(hi)


def bootstrap_ci(correct: np.ndarray, seed: int, n_boot: int = 1000, level: float = 0.95) -> tuple[float, float, float]:
    """(accuracy, low, high): the accuracy and its percentile-bootstrap interval, from a Generator seeded by
    `seed`."""
    arr = _outcomes(correct, "bootstrap_ci")
    n, k = arr.size, int(arr.sum())
    boot = np.random.default_rng(seed).binomial(n, k / n, size=n_boot) / n
    lo, hi = _percentiles(boot, level)
    return k / n, lo, hi


def _check_pred(pred: pd.DataFrame, slice_cols: list[str]) -> None:
    """Refuse a predictions frame without the columns the tables need."""
    missing = [c for c in (*PRED_COLUMNS, *slice_cols) if c not in pred.columns]
    if missing:
        raise ValueError(f"predictions lack column(s) {missing}; they have {list(pred.columns)}")
    if pred.empty:
        raise ValueError("predictions are empty")


def slice_table(
    pred: pd.DataFrame, slice_cols: list[str], seed: int, n_boot: int = 1000, min_size: int = 20
) -> pd.DataFrame:
    """Accuracy with a 95% bootstrap interval for "all" and every "column=value" slice of `slice_cols`.

    `pred` has columns id, label, pred, correct (bool) and the slice columns. Rows: "all" first, then each
    column's values sorted as text (missing values form their own "column=nan" slice, as in
    `curation.slices`). Columns: slice, column, value (missing for "all"), n, accuracy, ci_low, ci_high, small
    (n < min_size: reported, not hidden, but too few samples to act on).
    """
    _check_pred(pred, slice_cols)
    correct = _outcomes(pred["correct"].to_numpy(), "predictions' correct column")
    rows: list[dict[str, Any]] = []
    for name in slice_names(pred, slice_cols):
        mask = slice_mask(pred, name).to_numpy()
        acc, lo, hi = bootstrap_ci(correct[mask], seed=derive_seed(seed, "slice", name), n_boot=n_boot)
        column, _, value = name.partition("=")
        rows.append(
            {
                "slice": name,
                "column": None if name == ALL else column,
                "value": None if name == ALL else value,
                "n": int(mask.sum()),
                "accuracy": acc,
                "ci_low": lo,
                "ci_high": hi,
                "small": bool(mask.sum() < min_size),
            }
        )
    return pd.DataFrame(rows)


def class_report(pred: pd.DataFrame, labels: list[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 and per-class precision / recall / F1 / support for the whole prediction set.

    Labels compare as text. A precision or recall with an empty denominator counts as 0 (a class never
    predicted has precision 0). Macro-F1 averages the classes with test samples (support > 0); classes absent
    from the set are listed with support 0 but left out of the average, since their recall is undefined.
    Plain floats and ints, ready for JSON.
    """
    _check_pred(pred, [])
    truth = pred["label"].astype(str).to_numpy()
    guess = pred["pred"].astype(str).to_numpy()
    per_class: dict[str, dict[str, float | int]] = {}
    f1s: list[float] = []
    for label in map(str, labels):
        tp = int(((truth == label) & (guess == label)).sum())
        support = int((truth == label).sum())
        predicted = int((guess == label).sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
        if support:
            f1s.append(f1)
    return {
        "accuracy": float((truth == guess).mean()),
        "macro_f1": float(np.mean(f1s)) if f1s else 0.0,
        "per_class": per_class,
    }


def paired_delta(
    correct_a: np.ndarray, correct_b: np.ndarray, seed: int, n_boot: int = 1000, level: float = 0.95
) -> dict[str, float | int]:
    """Accuracy of model b minus model a on the same samples, with a paired percentile-bootstrap interval
    (samples resampled together) and the exact McNemar p-value (two-sided binomial test on the discordant
    pairs; 1.0 when there are none).

    Returns delta, ci_low, ci_high, p_mcnemar, and the counts n, a_only (a right, b wrong), b_only.
    """
    a = _outcomes(correct_a, "paired_delta model a")
    b = _outcomes(correct_b, "paired_delta model b")
    if a.size != b.size:
        raise ValueError(f"paired_delta: {a.size} outcomes for model a but {b.size} for model b")
    n = a.size
    a_only, b_only = int((a & ~b).sum()), int((~a & b).sum())
    cells = np.array([a_only, b_only, n - a_only - b_only]) / n
    draws = np.random.default_rng(seed).multinomial(n, cells, size=n_boot)
    lo, hi = _percentiles((draws[:, 1] - draws[:, 0]) / n, level)
    discordant = a_only + b_only
    p = binomtest(b_only, discordant, 0.5).pvalue if discordant else 1.0
    return {
        "delta": (b_only - a_only) / n,
        "ci_low": lo,
        "ci_high": hi,
        "p_mcnemar": float(p),
        "n": n,
        "a_only": a_only,
        "b_only": b_only,
    }
