"""From the store to the files DVC tracks: one decision per sample for the build stage, and every labeler's.

- the decisions file (`versions.DECISION_COLUMNS`, one row per sample, queue order) holds the labelers'
  consensus: the outcome (`agreement.outcome`) more than half of the sure labelers gave; a tie or no sure
  labeler gives `unsure`, which the build leaves out. Rows already in the file for samples nobody decided in
  the store (a spreadsheet's, `curate review init`) are kept;
- the annotations file holds each labeler's current decision (who, when, blind or not, on which file): the
  input of the agreement report, and the record of who decided what.
"""

from __future__ import annotations

import pandas as pd

from curation.review.agreement import REJECTED, outcome
from curation.versions import DECISION_COLUMNS

ANNOTATION_COLUMNS = ("id", "labeler", "decision", "label", "note", "blind", "decided_at", "path")


def annotations(current: pd.DataFrame, queue_ids: list[str]) -> pd.DataFrame:
    """ANNOTATION_COLUMNS: each labeler's current decision per sample, in queue order then by labeler."""
    order = {sid: i for i, sid in enumerate(queue_ids)}
    out = current.rename(columns={"sample_id": "id"})[list(ANNOTATION_COLUMNS)]
    out = out.assign(blind=out["blind"].astype(bool), _pos=out["id"].map(order))
    return out.sort_values(["_pos", "labeler"], kind="stable").drop(columns="_pos").reset_index(drop=True)


def _consensus_row(sid: str, g: pd.DataFrame, proposed: str, path: str) -> dict[str, str]:
    votes = [o for o in (outcome(d, lab) for d, lab in zip(g["decision"], g["label"], strict=True)) if o is not None]
    counts = pd.Series(votes, dtype=object).value_counts()
    who = ";".join(g["labeler"])
    notes = "; ".join(f"{w}: {n}" for w, n in zip(g["labeler"], g["note"], strict=True) if n)
    if len(counts) and counts.iloc[0] * 2 > len(votes):
        winner = str(counts.index[0])
        if winner == REJECTED:
            decision, label = "reject", proposed
        else:
            decision, label = ("accept" if winner == proposed else "relabel"), winner
    else:
        decision, label = "unsure", proposed
        if len(counts) > 1:
            split = ", ".join(f"{o} x{n}" for o, n in counts.items())
            notes = "; ".join(x for x in (f"labelers disagree ({split})", notes) if x)
    return {"id": sid, "decision": decision, "label": label, "labeler": who, "note": notes, "path": path}


def consensus(current: pd.DataFrame, queue: pd.DataFrame) -> pd.DataFrame:
    """DECISION_COLUMNS, one row per decided sample of the queue (id, label: the proposed label, path: the file
    decided on, so that the build can tell a decision on another queue), in queue order."""
    q = queue.set_index("id")
    proposed, paths = q["label"], q["path"]
    rows = [
        _consensus_row(sid, g.sort_values("labeler", kind="stable"), str(proposed[sid]), str(paths[sid]))
        for sid, g in current.groupby("sample_id", sort=False)
        if sid in proposed.index
    ]
    out = pd.DataFrame(rows, columns=list(DECISION_COLUMNS))
    order = {sid: i for i, sid in enumerate(queue["id"])}
    return out.sort_values("id", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)


def merge_decisions(existing: pd.DataFrame, new: pd.DataFrame, queue_ids: list[str]) -> pd.DataFrame:
    """The decisions file after an export: the store's rows, and the existing file's rows for other samples;
    queue order first, then samples no longer queued in their old order (the build names them as errors)."""
    kept = existing[~existing["id"].isin(new["id"])].reindex(columns=list(DECISION_COLUMNS), fill_value="")
    out = pd.concat([kept, new], ignore_index=True)[list(DECISION_COLUMNS)]
    order = {sid: i for i, sid in enumerate(queue_ids)}
    pos = out["id"].map(order).fillna(len(order)).astype(int)
    return out.assign(_pos=pos).sort_values("_pos", kind="stable").drop(columns="_pos").reset_index(drop=True)
