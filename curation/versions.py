"""Build a new dataset version: the parent's samples, the accepted candidates, and the labelers' decisions.

Decisions come from a plain CSV (`reviews/<dataset>.csv`: id, decision, label, labeler, note) that a labeler
edits and git versions. Every decision must name a sample in the review queue; `accept` adds it with its
proposed label, `relabel` adds it with the label given, `reject` and `unsure` leave it out.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

DECISIONS = ("accept", "relabel", "reject", "unsure")
DECISION_COLUMNS = ("id", "decision", "label", "labeler", "note")


class DecisionError(ValueError):
    """A decisions file that cannot be applied; the message lists every offending row."""


def read_decisions(path: str) -> pd.DataFrame:
    """The decisions CSV as strings (empty cells as empty strings); rows without a decision are ignored
    only if their decision cell is empty, which means 'not reviewed yet'."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in DECISION_COLUMNS if c not in df.columns]
    if missing:
        raise DecisionError(f"{path}: missing column(s) {', '.join(missing)}")
    return df[df["decision"].str.strip() != ""].reset_index(drop=True)


def check_decisions(decisions: pd.DataFrame, queue_ids: set[str], labels: list[str]) -> None:
    """Raise listing every decision that names an unknown sample, an unknown verb or label, or repeats an id."""
    problems = []
    for r in decisions.itertuples():
        if r.id not in queue_ids:
            problems.append(f"{r.id}: not in the review queue")
        if r.decision not in DECISIONS:
            problems.append(f"{r.id}: decision {r.decision!r} is not one of {DECISIONS}")
        if r.decision == "relabel" and r.label not in labels:
            problems.append(f"{r.id}: relabel to {r.label!r}, which is not in the label set")
    dup = decisions["id"][decisions["id"].duplicated()]
    problems += [f"{i}: decided more than once" for i in sorted(set(dup))]
    if problems:
        raise DecisionError("cannot apply review decisions:\n  " + "\n  ".join(problems))


def build_version(
    parent: pd.DataFrame,
    candidates: pd.DataFrame,
    verdicts: pd.DataFrame,
    decisions: pd.DataFrame,
    labels: list[str],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The new version's manifest and what changed against the parent (for the version card)."""
    verdict_of = verdicts.set_index("id")["verdict"]
    queue_ids = set(verdict_of[verdict_of == "review"].index)
    check_decisions(decisions, queue_ids, labels)
    accepted = set(verdict_of[verdict_of == "accept"].index)
    decided = decisions.set_index("id")
    taken = decided[decided["decision"].isin(["accept", "relabel"])]
    added = candidates[candidates["id"].isin(accepted | set(taken.index))].copy()
    relabel = taken[taken["decision"] == "relabel"]["label"]
    added.loc[added["id"].isin(relabel.index), "label"] = added["id"].map(relabel)
    version = pd.concat([parent, added], ignore_index=True)
    train_before = parent[parent["split"] == "train"]["label"].value_counts(normalize=True)
    train_after = version[version["split"] == "train"]["label"].value_counts(normalize=True)
    shift = (train_after.reindex(labels, fill_value=0) - train_before.reindex(labels, fill_value=0)).abs()
    changes = {
        "parent_samples": len(parent),
        "samples": len(version),
        "added": len(added),
        "added_by_slice": added["target_slice"].value_counts().sort_index().to_dict(),
        "accepted_by_checklist": len(accepted),
        "review": {
            "queued": len(queue_ids),
            "decided": len(decisions),
            "added": len(taken),
            "relabeled": len(relabel),
            "rejected": int((decided["decision"] == "reject").sum()),
            "unsure": int((decided["decision"] == "unsure").sum()),
        },
        "train_per_label": version[version["split"] == "train"]["label"].value_counts().sort_index().to_dict(),
        "max_class_prior_shift": float(shift.max()) if len(shift) else 0.0,
    }
    return version, changes
