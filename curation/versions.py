"""Build a new dataset version: the parent's samples, the accepted candidates, and the labelers' decisions.

Decisions come from a plain CSV (`data/reviews/<dataset>.csv`: id, decision, label, labeler, note, path) that
`curate review export` writes (or a labeler edits) and git versions. Every decision must name a sample in the
review queue, which holds two kinds:
- candidates (checklist verdict `review`): `accept` adds it with its proposed label, `relabel` adds it with
  the label given, `reject` and `unsure` leave it out;
- label issues (existing samples that confident learning flags, `is_issue`): `accept` and `unsure` keep the
  sample as labelled, `relabel` changes its label in the new version, `reject` drops it from the new version.
  Undecided flagged samples stay as they are.
A decision that records the sample's `path` (exports and `review init` do) is stale when the queue no longer
holds that id with that file: augmenting again (another budget, another seed) makes other candidates, and a
candidate's file name is its content hash. Stale decisions are left out and listed on the version card; a
decision without a path must name a queued sample, or the build stops naming it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from augment.rng import derive_seed
from curation.budget import allocate_budget

PICKS = ("hardest", "random")  # build.pick: which accepted candidates the budget pays for (within_budget)
DECISIONS = ("accept", "relabel", "reject", "unsure")
DECISION_COLUMNS = ("id", "decision", "label", "labeler", "note", "path")
OPTIONAL_DECISION_COLUMNS = ("path",)  # files written before paths were recorded still read
QUEUE_COLUMNS = (
    "id",
    "path",
    "label",
    "kind",
    "reason",
    "target_slice",
    "source_id",
    "realism",
    "clarity",
    "weakness",
    "suggested",
    "label_quality",
)
CANDIDATE_COLUMNS = ("id", "path", "label", "reason", "target_slice", "source_id", "realism", "clarity", "weakness")
ISSUE_COLUMNS = ("id", "path", "label", "reason", "suggested", "label_quality", "is_issue")


class DecisionError(ValueError):
    """A decisions file that cannot be applied; the message lists every offending row."""


def read_decisions(path: str) -> pd.DataFrame:
    """The decisions CSV as strings (empty cells as empty strings); rows without a decision are ignored
    only if their decision cell is empty, which means 'not reviewed yet'."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in DECISION_COLUMNS if c not in df.columns and c not in OPTIONAL_DECISION_COLUMNS]
    if missing:
        raise DecisionError(f"{path}: missing column(s) {', '.join(missing)}")
    df = _with_optional_columns(df)
    return df[df["decision"].str.strip() != ""].reset_index(drop=True)


def _with_optional_columns(decisions: pd.DataFrame) -> pd.DataFrame:
    absent = [c for c in OPTIONAL_DECISION_COLUMNS if c not in decisions.columns]
    return decisions.reindex(columns=[*decisions.columns, *absent], fill_value="")


def split_stale(decisions: pd.DataFrame, queued_paths: Mapping[str, str]) -> tuple[pd.DataFrame, list[dict]]:
    """(decisions that still apply, stale ones with the reason): a decision recording a path is stale when its
    id is no longer queued, or is queued with another file (module docstring)."""
    stale = []
    for r in decisions.itertuples():
        if not r.path:
            continue
        if r.id not in queued_paths:
            stale.append({"id": r.id, "reason": "no longer in the review queue"})
        elif queued_paths[r.id] != r.path:
            stale.append({"id": r.id, "reason": f"queued with another file ({queued_paths[r.id]}, decided {r.path})"})
    gone = {s["id"] for s in stale}
    return decisions[~decisions["id"].isin(gone)].reset_index(drop=True), stale


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


def flagged_issues(label_issues: pd.DataFrame | None) -> pd.DataFrame:
    """The rows of a label-issue table (`label_issues.find_label_issues`) flagged `is_issue`; none for None.

    Raises when columns are missing or `is_issue` is not boolean (a CSV round trip would make "False" true).
    """
    if label_issues is None:
        return pd.DataFrame(columns=list(ISSUE_COLUMNS))
    missing = [c for c in ISSUE_COLUMNS if c not in label_issues.columns]
    if missing:
        raise ValueError(f"label-issue table lacks column(s) {', '.join(missing)}")
    if not pd.api.types.is_bool_dtype(label_issues["is_issue"]):
        raise ValueError(f"label-issue table: is_issue must be boolean, got {label_issues['is_issue'].dtype}")
    return label_issues[label_issues["is_issue"]].reset_index(drop=True)


def review_queue(verdicts: pd.DataFrame, label_issues: pd.DataFrame | None = None) -> pd.DataFrame:
    """One review queue (QUEUE_COLUMNS): candidates with verdict `review` (kind "candidate"), then flagged
    label issues (kind "label_issue", lowest label quality first), so a labeler decides both in one file.

    Columns that do not apply to a kind are empty (candidates: suggested, label_quality; label issues:
    target_slice, source_id and the checklist scores).
    """
    cands = verdicts[verdicts["verdict"] == "review"][list(CANDIDATE_COLUMNS)].assign(kind="candidate")
    flagged = flagged_issues(label_issues).sort_values(["label_quality", "id"], kind="stable")
    issues = flagged.drop(columns="is_issue").assign(kind="label_issue")
    parts = [p for p in (cands, issues) if len(p)]
    if not parts:
        return pd.DataFrame(columns=list(QUEUE_COLUMNS))
    return pd.concat(parts, ignore_index=True).reindex(columns=list(QUEUE_COLUMNS))


def _apply_issue_decisions(parent: pd.DataFrame, decided: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The parent with the decisions on its flagged samples applied (relabel: new label; reject: dropped;
    accept, unsure: unchanged) and the record of what changed."""
    relabel = decided[decided["decision"] == "relabel"]["label"]
    removed = sorted(decided.index[decided["decision"] == "reject"])
    old_label = parent.set_index("id")["label"]
    kept = parent[~parent["id"].isin(removed)].copy()
    hit = kept["id"].isin(relabel.index)
    kept.loc[hit, "label"] = kept.loc[hit, "id"].map(relabel)
    record = {
        "relabeled": len(relabel),
        "removed": len(removed),
        "relabels": {i: {"from": str(old_label[i]), "to": str(relabel[i])} for i in sorted(relabel.index)},
        "removals": removed,
    }
    return kept, record


def _follow_sources(
    added: pd.DataFrame, decided: pd.DataFrame, own_label: set[str]
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Candidates made from a flagged sample follow the decision on it: an augmented copy of a sample
    relabelled carries the new label (unless a labeler relabelled the copy itself: `own_label`), one of a
    sample dropped is dropped too."""
    relabel = decided[decided["decision"] == "relabel"]["label"]
    dropped = set(decided.index[decided["decision"] == "reject"])
    out = added[~added["source_id"].isin(dropped)].copy()
    hit = out["source_id"].isin(relabel.index) & ~out["id"].isin(own_label)
    out.loc[hit, "label"] = out.loc[hit, "source_id"].map(relabel)
    return out, {"relabeled": int(hit.sum()), "dropped": len(added) - len(out)}


def prior_guard(
    parent_train: pd.Series, added: pd.DataFrame, labels: list[str], tolerance: float
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Keep the training set's class shares within `tolerance` of the parent's by dropping added samples.

    Many added examples of one class shift the prior the model learns (a flood of ambiguous "I" images can
    make it call true "1"s "I"). While some class's share exceeds its parent share by more than the tolerance
    (or falls below it by more), one added sample of the most over-represented class is dropped: first those
    the checklist accepted rather than a labeler, then the lowest `weakness` (the model gets them right
    already), then by id. `added` needs label, id, and optionally weakness / by_labeler columns. Returns the
    kept rows and the record {tolerance, shift_before, shift_after, dropped, dropped_by_label}.
    """
    if not 0.0 <= tolerance <= 1.0:
        raise ValueError(f"build.prior_tolerance {tolerance}: must be in [0, 1]")
    base = parent_train.astype(str).value_counts().reindex(labels, fill_value=0).to_numpy(dtype=np.float64)
    target = base / base.sum()
    order = added.assign(
        _human=added["by_labeler"] if "by_labeler" in added.columns else False,
        _weak=added["weakness"] if "weakness" in added.columns else 0.0,
    ).sort_values(["_human", "_weak", "id"], ascending=[True, True, True], kind="stable")
    queues = {label: list(order.index[order["label"].astype(str) == label]) for label in labels}
    counts = np.array([len(queues[label]) for label in labels], dtype=np.float64)

    def shift(c: np.ndarray) -> np.ndarray:
        return (base + c) / (base.sum() + c.sum()) - target

    before = float(np.abs(shift(counts)).max()) if len(labels) else 0.0
    dropped: list[Any] = []
    while counts.sum() > 0 and np.abs(shift(counts)).max() > tolerance + 1e-12:
        k = int(np.argmax(np.where(counts > 0, shift(counts), -np.inf)))
        dropped.append(queues[labels[k]].pop(0))
        counts[k] -= 1
    kept = added.drop(index=dropped)
    by_label = added.loc[dropped, "label"].astype(str).value_counts().sort_index().to_dict()
    return kept, {
        "tolerance": tolerance,
        "shift_before": before,
        "shift_after": float(np.abs(shift(counts)).max()) if len(labels) else 0.0,
        "dropped": len(dropped),
        "dropped_by_label": {str(k): int(v) for k, v in by_label.items()},
    }


@dataclass(frozen=True)
class Stratify:
    """`build.stratify`: pay each target's budget evenly across the range of one parameter its policy drew.

    The checklist rejects some draws more than others (the lowest SNRs most: a clip drowned in noise loses its
    label), so paying accepted candidates in pick order alone shifts what the version gains toward easy draws.
    Stratified, a target's candidates (every verdict: the draws, not the survivors) are cut into `bins` bins of
    equal count by the value of `param` in the record of the first applied `transform` (e.g. BackgroundNoise's
    `snr_db`); each bin pays an equal share of the target's allocation, candidates whose transform did not
    apply form one more stratum paid by their count, and what a stratum lacks is then filled from the target's
    other accepted candidates. Each stratum pays in `build.pick` order. FSDD ablation: README.
    """

    transform: str
    param: str
    bins: int = 4

    def __post_init__(self) -> None:
        for name in ("transform", "param"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"build.stratify.{name} must be a non-empty string, got {getattr(self, name)!r}")
        if isinstance(self.bins, bool) or not isinstance(self.bins, int) or self.bins < 1:
            raise ValueError(f"build.stratify.bins must be a whole number >= 1, got {self.bins!r}")

    @classmethod
    def from_params(cls, spec: Mapping[str, Any] | None) -> Stratify | None:
        """The `build.stratify` entry checked (None: off); a ValueError names what is wrong."""
        if spec is None:
            return None
        if not isinstance(spec, Mapping):
            raise ValueError(f"build.stratify must be a mapping with transform, param and bins, got {spec!r}")
        unknown = sorted(set(spec) - {"transform", "param", "bins"})
        if unknown:
            raise ValueError(f"build.stratify: unknown key(s) {unknown}; it takes transform, param and bins")
        return cls(spec.get("transform"), spec.get("param"), spec.get("bins", 4))

    def values(self, judged: pd.DataFrame) -> pd.Series:
        """Each candidate's drawn value (its `augment_params` record), NaN where the transform did not apply.

        Raises ValueError naming the candidate when its record is missing or malformed, or its value is not a
        finite number, and naming the transform when no candidate records it at all (a misspelt name would
        otherwise stratify nothing)."""
        if "augment_params" not in judged.columns:
            raise ValueError("build.stratify: judged candidates lack column augment_params")
        named, out = False, []
        for cid, text in zip(judged["id"], judged["augment_params"], strict=True):
            records = self._records(cid, text)
            named = named or bool(records)
            applied = next((params for params in records if params.get("applied")), None)
            if applied is None:
                out.append(np.nan)
                continue
            value = applied.get(self.param)
            if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
                raise ValueError(f"build.stratify: candidate {cid}: {self.transform}.{self.param} is {value!r}, "
                                 "not a finite number")  # fmt: skip
            out.append(float(value))
        if len(judged) and not named:
            raise ValueError(f"build.stratify: no candidate's recorded parameters name transform {self.transform!r}")
        return pd.Series(out, index=judged.index, dtype=float)

    def _records(self, cid: str, text: Any) -> list[Mapping[str, Any]]:
        """The parameters of each of the candidate's records of `transform`, in order."""
        if not isinstance(text, str):
            raise ValueError(f"build.stratify: candidate {cid} has no recorded parameters (augment_params)")
        try:
            records = json.loads(text)
            found = [r["params"] for r in records if r["name"] == self.transform]
        except (json.JSONDecodeError, TypeError, KeyError) as exc:
            raise ValueError(f"build.stratify: candidate {cid}: malformed augment_params ({exc!r})") from None
        if not all(isinstance(params, Mapping) for params in found):
            raise ValueError(f"build.stratify: candidate {cid}: a {self.transform} record's params is not a mapping")
        return found

    def strata(self, values: pd.Series, ids: pd.Series) -> np.ndarray:
        """Stratum per row: 0..bins-1 by rank of the value (ties by id), `bins` where there is none."""
        out = np.full(len(values), self.bins, dtype=np.int64)
        drawn = np.flatnonzero(values.notna().to_numpy())
        order = drawn[np.lexsort((ids.to_numpy()[drawn], values.to_numpy()[drawn]))]
        if len(order) > 1:
            out[order] = pd.qcut(np.arange(1, len(order) + 1), self.bins, labels=False)
        else:
            out[order] = 0
        return out

    def quotas(self, strata: np.ndarray, share: int) -> dict[int, int]:
        """A target's `share` split among its strata: equal per bin, the stratum without a value by its count."""
        n_none = int((strata == self.bins).sum())
        n_drawn = len(strata) - n_none
        weights = dict.fromkeys(range(self.bins), 1.0) if n_drawn else {}
        if n_none:
            weights[self.bins] = n_none * self.bins / n_drawn if n_drawn else 1.0
        return allocate_budget(weights, share)


def within_budget(
    judged: pd.DataFrame,
    allocation: Mapping[str, int],
    pick: str = "hardest",
    seed: int = 0,
    stratify: Stratify | None = None,
    values: pd.Series | None = None,
) -> pd.Series:
    """True for the accepted candidates the budget pays for: per target slice, at most `allocation[slice]` of
    its `accept` verdicts, in the order `pick` gives, spread over the strata of `stratify` when given
    (`values`: `stratify.values(judged)`, when the caller has them already).

    With `augment.oversample` > 1 the checklist judges more candidates than the version may gain. `hardest`
    takes the highest `weakness` first (ties by id): the ones the current model finds hardest. `random` takes
    them in an order drawn from (seed, id), so the draw does not depend on row order. Hardest-first can pick
    the most degraded clips when the current model has never seen the condition (the FSDD ablation, README).
    Rows of slices absent from `allocation` are never paid for.
    """
    if pick not in PICKS:
        raise ValueError(f"build.pick must be one of {PICKS}, got {pick!r}")
    missing = [c for c in ("id", "target_slice", "verdict", "weakness") if c not in judged.columns]
    if missing:
        raise ValueError(f"within_budget: judged candidates lack column(s) {', '.join(missing)}")
    frame = judged.reset_index(drop=True)  # by position: the caller's index may repeat labels
    if stratify is None:
        paid = _in_pick_order(frame, allocation, pick, seed)
    else:
        values = stratify.values(frame) if values is None else pd.Series(values.to_numpy(), index=frame.index)
        paid = pd.Series(False, index=frame.index)
        for target, rows in frame.groupby("target_slice", sort=False).groups.items():
            part, share = frame.loc[rows], int(allocation.get(target, 0))
            strata = stratify.strata(values.loc[rows], part["id"])
            for stratum, quota in stratify.quotas(strata, share).items():
                into = part[strata == stratum]
                paid[into.index] = _in_pick_order(into, {target: quota}, pick, seed)
            rest = part[~paid[rows].to_numpy()]
            paid[rest.index] |= _in_pick_order(rest, {target: share - int(paid[rows].sum())}, pick, seed)
    return pd.Series(paid.to_numpy(), index=judged.index)


def _in_pick_order(judged: pd.DataFrame, allocation: Mapping[str, int], pick: str, seed: int) -> pd.Series:
    """`within_budget` without strata: per target, the first `allocation[target]` accepted in `pick` order."""
    accepted = judged[judged["verdict"] == "accept"]
    if pick == "hardest":
        accepted = accepted.sort_values(["weakness", "id"], ascending=[False, True])
    else:
        draw = [derive_seed(seed, "build pick", i) for i in accepted["id"]]
        accepted = accepted.assign(_draw=draw).sort_values(["_draw", "id"]).drop(columns="_draw")
    rank = accepted.groupby("target_slice", sort=False).cumcount()
    limit = np.array([int(allocation.get(t, 0)) for t in accepted["target_slice"]], dtype=np.int64)
    paid = set(accepted.index[rank.to_numpy() < limit])
    return pd.Series(judged.index.isin(paid), index=judged.index)


def _drawn_and_paid(judged: pd.DataFrame, stratify: Stratify, values: pd.Series, paid: pd.Series) -> dict[str, Any]:
    """For the card: per target, the median drawn value (`values`) over every candidate and over the ones paid
    for (a checklist that shifts the mix shows as a gap that stratifying closes)."""
    by_target = values.groupby(judged["target_slice"])
    paid_by_target = values[paid].groupby(judged.loc[paid, "target_slice"])
    return {"transform": stratify.transform, "param": stratify.param, "bins": stratify.bins,
            "median_drawn": {t: float(v) for t, v in by_target.median().dropna().items()},
            "median_paid": {t: float(v) for t, v in paid_by_target.median().dropna().items()}}  # fmt: skip


def build_version(
    parent: pd.DataFrame,
    candidates: pd.DataFrame,
    verdicts: pd.DataFrame,
    decisions: pd.DataFrame,
    labels: list[str],
    label_issues: pd.DataFrame | None = None,
    prior_tolerance: float | None = None,
    allocation: Mapping[str, int] | None = None,
    pick: str = "hardest",
    seed: int = 0,
    stratify: Stratify | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The new version's manifest and what changed against the parent (for the version card).

    `allocation`: each target slice's share of the budget (the augment plan's); the checklist's accepted
    candidates beyond it are left out, those kept chosen by `pick` with `seed`, over the strata of `stratify`
    when given (`within_budget`; the drawn values come from the candidates' `augment_params`). None: every
    accepted one joins.
    `label_issues`: the table of `label_issues.find_label_issues` on the parent's samples (optional); its
    flagged samples join the review queue and the decisions on them edit the parent (module docstring).
    `prior_tolerance`: the class-prior guard (`prior_guard`) on the added training samples; None: off.
    """
    verdict_of = verdicts.set_index("id")["verdict"]
    candidate_queue = set(verdict_of[verdict_of == "review"].index)
    flagged = set(flagged_issues(label_issues)["id"])
    stale = sorted(flagged - set(parent["id"]))
    if stale:
        raise ValueError(f"label issue(s) name sample(s) not in the parent version: {', '.join(stale[:10])}")
    queued_paths = {
        **candidates[candidates["id"].isin(candidate_queue)].set_index("id")["path"].astype(str).to_dict(),
        **parent[parent["id"].isin(flagged)].set_index("id")["path"].astype(str).to_dict(),
    }
    decisions, stale = split_stale(_with_optional_columns(decisions), queued_paths)
    check_decisions(decisions, candidate_queue | flagged, labels)
    accepted = set(verdict_of[verdict_of == "accept"].index)
    over_budget, stratified = 0, None
    if allocation is not None:
        judged = verdicts
        if stratify is not None:
            if "augment_params" not in candidates.columns:
                raise ValueError("build.stratify: the candidates table lacks column augment_params")
            unknown = sorted(set(verdicts["id"]) - set(candidates["id"]))
            if unknown:
                raise ValueError(f"verdict(s) name candidate(s) not in the candidates table: {', '.join(unknown[:10])}")
            judged = verdicts.assign(augment_params=verdicts["id"].map(candidates.set_index("id")["augment_params"]))
        values = None if stratify is None else stratify.values(judged)  # parsed once: the pick and the card
        in_budget = within_budget(judged, allocation, pick, seed, stratify, values)
        paid = set(verdicts.loc[in_budget, "id"])
        over_budget, accepted = len(accepted - paid), paid
        if stratify is not None:
            stratified = _drawn_and_paid(judged, stratify, values, in_budget)
    decided_all = decisions.set_index("id")
    decided = decided_all[decided_all.index.isin(candidate_queue)]
    taken = decided[decided["decision"].isin(["accept", "relabel"])]
    added = candidates[candidates["id"].isin(accepted | set(taken.index))].copy()
    relabel = taken[taken["decision"] == "relabel"]["label"]
    added.loc[added["id"].isin(relabel.index), "label"] = added["id"].map(relabel)
    issue_decided = decided_all[decided_all.index.isin(flagged)]
    kept, issue_record = _apply_issue_decisions(parent, issue_decided)
    added, issue_record["candidates"] = _follow_sources(added, issue_decided, set(relabel.index))
    guard: dict[str, Any] | None = None
    if prior_tolerance is not None:
        scored = added.assign(by_labeler=added["id"].isin(taken.index))
        if "weakness" in verdicts:
            scored["weakness"] = added["id"].map(verdicts.set_index("id")["weakness"])
        kept_added, guard = prior_guard(kept[kept["split"] == "train"]["label"], scored, [str(x) for x in labels],
                                        float(prior_tolerance))  # fmt: skip
        added = added.loc[kept_added.index]
    version = pd.concat([kept, added], ignore_index=True)
    train_before = parent[parent["split"] == "train"]["label"].value_counts(normalize=True)
    train_after = version[version["split"] == "train"]["label"].value_counts(normalize=True)
    shift = (train_after.reindex(labels, fill_value=0) - train_before.reindex(labels, fill_value=0)).abs()
    changes = {
        "parent_samples": len(parent),
        "samples": len(version),
        "added": len(added),
        "added_by_slice": added["target_slice"].value_counts().sort_index().to_dict(),
        "accepted_by_checklist": len(accepted),
        "accepted_over_budget": over_budget,
        "stratified": stratified,
        "review": {
            "queued": len(candidate_queue),
            "decided": len(decided),
            "added": len(taken),
            "relabeled": len(relabel),
            "rejected": int((decided["decision"] == "reject").sum()),
            "unsure": int((decided["decision"] == "unsure").sum()),
            "stale": stale,
        },
        "label_issues": {"flagged": len(flagged), "decided": len(issue_decided)} | issue_record,
        "train_per_label": version[version["split"] == "train"]["label"].value_counts().sort_index().to_dict(),
        "max_class_prior_shift": float(shift.max()) if len(shift) else 0.0,
        "prior_guard": guard,
    }
    return version, changes
