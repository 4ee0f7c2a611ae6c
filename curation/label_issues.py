"""Label issues by confident learning: out-of-sample probabilities from K-fold training, then cleanlab.

`out_of_sample_probs` trains one model per fold on the other folds and predicts the held-out fold, so every
sample's probabilities come from a model that never saw it (early stopping watches a slice of the fold's
training part, never the predicted fold). `find_label_issues` hands those probabilities to cleanlab
(`cleanlab.filter.find_label_issues` for the flags, `cleanlab.rank.get_label_quality_scores` for the scores)
and explains each sample in one line, for the review queue.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from cleanlab.filter import find_label_issues as cleanlab_find_label_issues
from cleanlab.rank import get_label_quality_scores
from sklearn.model_selection import StratifiedKFold
from tqdm import tqdm

from augment.rng import derive_seed, generator
from curation.features import load_inputs
from curation.train import predict_proba, train_model

DEV_FRACTION = 0.15  # share of each class in a fold's training part that early stopping watches
FILTERS = (
    "prune_by_noise_rate",
    "prune_by_class",
    "both",
    "confident_learning",
    "predicted_neq_given",
    "low_normalized_margin",
    "low_self_confidence",
)
RANKINGS = ("self_confidence", "normalized_margin", "confidence_weighted_entropy")


class LabelIssueError(ValueError):
    """Inputs that cannot give honest out-of-sample probabilities or label-issue flags."""


def label_indices(df: pd.DataFrame, labels: list[str]) -> np.ndarray:
    """Each row's label as an index into `labels`; raise naming the labels that are not in the label set."""
    index = {str(label): k for k, label in enumerate(labels)}
    given = df["label"].astype(str)
    unknown = sorted(set(given) - set(index))
    if unknown:
        raise LabelIssueError(f"label(s) {unknown} are not in the label set {list(labels)}")
    return given.map(index).to_numpy(dtype=np.int64)


def check_fold_counts(y: np.ndarray, labels: list[str], folds: int) -> None:
    """Raise naming every label with fewer samples than folds: each fold's model must see every class, and
    each held-out fold should hold one of each."""
    if folds < 2:
        raise LabelIssueError(f"out-of-sample probabilities need at least 2 folds, got {folds}")
    counts = np.bincount(y, minlength=len(labels))
    short = [f"'{labels[k]}' ({int(n)})" for k, n in enumerate(counts) if n < folds]
    if short:
        raise LabelIssueError(
            f"label(s) {', '.join(short)} have fewer samples than the {folds} folds; "
            "use fewer folds or collect more samples of them"
        )


def _early_stopping_slice(y: np.ndarray, part: np.ndarray, seed: int, fold: int) -> tuple[np.ndarray, np.ndarray]:
    """Split a fold's training part (positions `part`) into (train, dev) positions: DEV_FRACTION of each
    class, rounded, at least one sample left to train on, drawn with a seed derived for this fold."""
    rng = generator(seed, "label_issues", "dev", fold)
    dev: list[np.ndarray] = []
    for k in np.unique(y[part]):
        members = part[y[part] == k]
        take = min(round(DEV_FRACTION * len(members)), len(members) - 1)
        dev.append(rng.permutation(members)[:take])
    dev_pos = np.sort(np.concatenate(dev))
    return np.setdiff1d(part, dev_pos), dev_pos


def out_of_sample_probs(
    df: pd.DataFrame,
    labels: list[str],
    modality: str,
    media: dict[str, Any],
    train_cfg: dict[str, Any],
    seed: int,
    folds: int = 4,
    epochs: int | None = None,
    progress: bool = True,
) -> np.ndarray:
    """K-fold cross-validated class probabilities (len(df), len(labels)), float32, in row order of `df`.

    Why: confident learning is only sound on probabilities from models that never saw the sample. Folds are
    stratified by label (seeded with `derive_seed(seed, ...)`); each fold's model is trained with
    `train_model` and the params' train settings (`epochs` overrides their epoch count, to save time) on the
    other folds minus a stratified DEV_FRACTION slice that early stopping watches. Inputs are loaded once.
    Same seed, data and machine: identical probabilities.
    """
    y = label_indices(df, labels)
    check_fold_counts(y, labels, folds)
    x = load_inputs(df["path"].tolist(), modality, {modality: media})
    cfg = dict(train_cfg) | {"media": media}
    if epochs is not None:
        cfg["epochs"] = int(epochs)
    split_seed = derive_seed(seed, "label_issues", "folds") % 2**32
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=split_seed)
    probs = np.full((len(df), len(labels)), np.nan, dtype=np.float32)
    bar = tqdm(
        enumerate(splitter.split(np.zeros(len(y)), y)),
        total=folds,
        desc=f"out-of-sample {modality}",
        unit="fold",
        disable=not progress or None,
    )
    for fold, (rest, held_out) in bar:
        fit, dev = _early_stopping_slice(y, rest, seed, fold)
        result = train_model(
            x[fit],
            y[fit],
            x[dev],
            y[dev],
            labels,
            modality,
            cfg,
            derive_seed(seed, "label_issues", "fold", fold),
            progress=False,
        )
        probs[held_out] = predict_proba(result.model, x[held_out])
        fold_acc = float((probs[held_out].argmax(axis=1) == y[held_out]).mean())
        bar.set_postfix(epochs=len(result.history), held_out_acc=f"{fold_acc:.3f}")
    return probs


def _reason(label: str, suggested: str, p_suggested: float, quality: float) -> str:
    """One line a labeler can act on."""
    if suggested != label:
        return (
            f"labelled '{label}' but out-of-sample model gives '{suggested}' p={p_suggested:.2f}, "
            f"label quality {quality:.2f}"
        )
    return f"labelled '{label}', out-of-sample model agrees p={p_suggested:.2f}, label quality {quality:.2f}"


def find_label_issues(
    df: pd.DataFrame,
    probs: np.ndarray,
    labels: list[str],
    filter_by: str = "prune_by_noise_rate",
    rank_by: str = "self_confidence",
) -> pd.DataFrame:
    """One row per sample of `df` (id, path, label, suggested, label_quality, is_issue, reason), sorted by
    label quality ascending (ties by id), from out-of-sample `probs` whose columns follow `labels`.

    Why: cleanlab's confident learning flags the samples whose given label disagrees with what the model
    confidently predicts, adjusting for per-class confidence; `filter_by` picks cleanlab's flagging rule,
    `rank_by` the label quality score (both in [0, 1], low = likely wrong).
    """
    if filter_by not in FILTERS:
        raise LabelIssueError(f"filter_by {filter_by!r} is not one of {FILTERS}")
    if rank_by not in RANKINGS:
        raise LabelIssueError(f"rank_by {rank_by!r} is not one of {RANKINGS}")
    p = np.asarray(probs, dtype=np.float64)
    if p.shape != (len(df), len(labels)):
        raise LabelIssueError(f"probabilities of shape {p.shape} do not fit {len(df)} samples x {len(labels)} labels")
    if not np.all(np.isfinite(p)) or not np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
        raise LabelIssueError("probabilities must be finite and sum to 1 per sample (out_of_sample_probs output)")
    y = label_indices(df, labels)
    ranked = cleanlab_find_label_issues(y, p, filter_by=filter_by, return_indices_ranked_by=rank_by, n_jobs=1)
    quality = get_label_quality_scores(y, p, method=rank_by)
    flagged = np.zeros(len(df), dtype=bool)
    flagged[np.asarray(ranked, dtype=np.int64)] = True
    best = p.argmax(axis=1)
    given = [labels[k] for k in y]
    suggested = [labels[k] for k in best]
    out = pd.DataFrame(
        {
            "id": df["id"].astype(str).to_numpy(),
            "path": df["path"].astype(str).to_numpy(),
            "label": given,
            "suggested": suggested,
            "label_quality": quality.astype(np.float64),
            "is_issue": flagged,
            "reason": [
                _reason(g, s, float(p[i, best[i]]), float(quality[i]))
                for i, (g, s) in enumerate(zip(given, suggested, strict=True))
            ],
        }
    )
    return out.sort_values(["label_quality", "id"], kind="stable").reset_index(drop=True)
