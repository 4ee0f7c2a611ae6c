"""Agreement between labelers per slice, and blind labelers' accuracy: the human-level performance on a slice.

Each labeler's current decision on a sample becomes an outcome: the label they gave (accept keeps the proposed
one, relabel gives another) or `reject`; `unsure` is no outcome. On a sample with two or more outcomes every pair
of labelers agrees or not; a slice's agreement is the share of agreeing pairs, with a bootstrap interval that
resamples samples (a sample's pairs together). Decisions made in blind mode (the proposed label hidden) are also
scored against the proposed label: for an augmented candidate that is the label of the clean source it was made
from, so the share is a labeler's accuracy on that slice, the level a model can be asked to reach.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from curation.stats import ratio_ci

ALL = "all"
REJECTED = "(reject)"  # the outcome of a reject (parenthesised: no label of a set may be named so)
AGREEMENT_COLUMNS = (
    "slice",
    "samples",
    "labelers",
    "pairs",
    "agreement",
    "agreement_low",
    "agreement_high",
    "blind_decisions",
    "blind_accuracy",
    "blind_accuracy_low",
    "blind_accuracy_high",
)


def outcome(decision: str, label: str) -> str | None:
    """What a decision says the sample is: its label, REJECTED, or None for `unsure`."""
    if decision in ("accept", "relabel"):
        return label
    return REJECTED if decision == "reject" else None


def _pairs(group: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per labeler pair on one sample: 1 if they agree, and the sample id as the pair's cluster."""
    agree, cluster = [], []
    for sid, g in group.groupby("sample_id", sort=False):
        for a, b in combinations(g["outcome"].tolist(), 2):
            agree.append(float(a == b))
            cluster.append(sid)
    return np.asarray(agree), np.asarray(cluster)


def _interval(values: np.ndarray, clusters: np.ndarray, seed: int) -> tuple[float | None, float | None, float | None]:
    if len(values) == 0:
        return None, None, None
    return ratio_ci(values, clusters, seed)


def agreement_table(current: pd.DataFrame, queue: pd.DataFrame, seed: int) -> pd.DataFrame:
    """AGREEMENT_COLUMNS per slice of the queue (and `all`), from each labeler's current decisions
    (`ReviewStore.current`) and the queue (`ReviewQueue.frame`: id, slice, label)."""
    d = current.merge(queue[["id", "slice", "label"]], left_on="sample_id", right_on="id", how="inner")
    d = d.assign(outcome=[outcome(x, y) for x, y in zip(d["decision"], d["label_x"], strict=True)])
    d = d.rename(columns={"label_y": "proposed"})
    rows = []
    for name in [*sorted(queue["slice"].unique()), ALL]:
        part = d if name == ALL else d[d["slice"] == name]
        decided = part.dropna(subset=["outcome"])
        agree, clusters = _pairs(decided)
        blind = decided[decided["blind"].astype(bool)]
        correct = (blind["outcome"] == blind["proposed"]).to_numpy(dtype=float)
        a = _interval(agree, clusters, seed)
        b = _interval(correct, blind["sample_id"].to_numpy(), seed)
        rows.append((name, part["sample_id"].nunique(), part["labeler"].nunique(), len(agree), *a, len(blind), *b))
    rates = [c for c in AGREEMENT_COLUMNS if c.startswith(("agreement", "blind_accuracy"))]
    return pd.DataFrame(rows, columns=list(AGREEMENT_COLUMNS)).astype(dict.fromkeys(rates, float))
