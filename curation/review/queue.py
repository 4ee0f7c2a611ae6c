"""What labelers review: the queue of flagged samples, the files the page may show, and the rules a decision
must pass before the store takes it.

The queue is the filter stage's `review_queue.csv` (`versions.QUEUE_COLUMNS`): augmented candidates the
checklist found ambiguous, and existing samples confident learning suspects of a wrong label. Each item has a
slice (a candidate's target slice; `label=<given label>` for a label issue) and a reason kind (the reason's
first words, e.g. `ambiguous`, or `label issue`), which the page filters by and agreement is reported per.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from curation import manifest
from curation.layout import Layout
from curation.media import MediaError, resolve_inside
from curation.review.agreement import REJECTED
from curation.versions import DECISIONS, QUEUE_COLUMNS, flagged_issues

UNSURE_CHOICE = "(unsure)"  # with REJECTED, a choice beside the labels (Label Studio): no label may be named so
LABEL_BOOK_PER_CLASS = 3  # reference examples per class shown beside every sample
CANDIDATE, LABEL_ISSUE = "candidate", "label_issue"


class ReviewError(ValueError):
    """A request the review app refuses, with the reason a labeler (or a client) can act on."""


class NoSuchItem(ReviewError):
    """An item index outside the queue."""


@dataclass(frozen=True)
class MediaRoots:
    """The folders the review app may serve files from, by name (URLs say `/files/<name>/<path inside>`).

    Only files the queue or the label book name are served (`ReviewQueue.files`), and only inside these roots.
    """

    roots: dict[str, Path]

    def locate(self, path: str) -> tuple[str, str]:
        """(root name, path inside it) of a sample's file; raises ReviewError when it lies in no root."""
        real = Path(path).resolve()
        for name, root in self.roots.items():
            if real.is_relative_to(root.resolve()):
                return name, real.relative_to(root.resolve()).as_posix()
        raise ReviewError(f"{path}: outside every served folder ({', '.join(map(str, self.roots.values()))})")

    def url(self, path: str) -> str:
        """The URL the page loads a sample's file from."""
        name, rel = self.locate(path)
        return f"/files/{quote(name)}/{quote(rel)}"

    def resolve(self, name: str, rel: str) -> Path:
        """The file at `rel` inside root `name`; raises MediaError for unknown roots, absolute paths, `..` escapes
        and symlinks leading outside."""
        if name not in self.roots:
            raise MediaError(rel, f"no served folder named {name!r}")
        return resolve_inside(self.roots[name], rel)


def _reason_kind(kind: str, reason: str) -> str:
    return "label issue" if kind == LABEL_ISSUE else (reason.split(":", 1)[0].strip() or "unspecified")


def _score(value: str) -> float | None:
    return float(value) if value not in ("", None) else None


def label_book(
    split: pd.DataFrame, labels: list[str], label_issues: pd.DataFrame | None, per_class: int = LABEL_BOOK_PER_CLASS
) -> dict[str, list[str]]:
    """A few reference training samples per class (paths, first by id), leaving out the suspected label errors,
    so a labeler can compare a sample with what the class looks or sounds like."""
    flagged = set(flagged_issues(label_issues)["id"])
    train = split[(split["split"] == "train") & ~split["id"].isin(flagged)].sort_values("id", kind="stable")
    by_label = train.groupby(train["label"].astype(str), sort=False)["path"]
    return {
        label: list(by_label.get_group(label).head(per_class)) if label in by_label.groups else [] for label in labels
    }


def queue_frame(queue: pd.DataFrame) -> pd.DataFrame:
    """The review queue as strings, with each item's slice and reason kind (module docstring)."""
    q = queue.fillna("").astype(str).reset_index(drop=True)
    slices = np.where(q["kind"] == LABEL_ISSUE, "label=" + q["label"], q["target_slice"])
    return q.assign(slice=slices, reason_kind=[_reason_kind(k, r) for k, r in zip(q["kind"], q["reason"], strict=True)])


def queued_files(frame: pd.DataFrame) -> dict[str, str]:
    """Sample id -> the file queued for it, of a queue frame: what decisions are checked against
    (`store.on_queued_files`)."""
    return dict(zip(frame["id"], frame["path"], strict=True))


class ReviewQueue:
    """The queue of one data set as the page shows it, and the checks every decision passes."""

    def __init__(
        self,
        queue: pd.DataFrame,
        labels: list[str],
        modality: str,
        roots: MediaRoots,
        source_paths: dict[str, str] | None = None,
        book: dict[str, list[str]] | None = None,
    ) -> None:
        missing = [c for c in QUEUE_COLUMNS if c not in queue.columns]
        if missing:
            raise ReviewError(f"review queue lacks column(s) {', '.join(missing)}")
        dup = queue["id"][queue["id"].duplicated()]
        if len(dup):
            raise ReviewError(f"review queue lists sample(s) twice: {', '.join(sorted(set(dup)))}")
        self.labels = [str(x) for x in labels]
        reserved = sorted({REJECTED, UNSURE_CHOICE} & set(self.labels))
        if reserved:
            raise ReviewError(f"label(s) {', '.join(reserved)} are reserved for the reject / unsure choices")
        self.modality = modality
        self.roots = roots
        self.frame = queue_frame(queue)
        self.position = {sid: i for i, sid in enumerate(self.frame["id"])}
        self.paths = queued_files(self.frame)
        sources = source_paths or {}
        self.book = {label: [roots.url(p) for p in paths] for label, paths in (book or {}).items()}
        self.items = [self._item(r, sources.get(r.source_id)) for r in self.frame.itertuples()]
        self.files = self._files(self.frame["path"], (sources.get(s) for s in self.frame["source_id"]), book or {})

    def _files(self, paths: Iterable[str], sources: Iterable[str | None], book: dict[str, list[str]]) -> set[tuple]:
        every = [*paths, *(s for s in sources if s), *(p for ps in book.values() for p in ps)]
        return {self.roots.locate(p) for p in every}

    def _item(self, r: Any, source_path: str | None) -> dict[str, Any]:
        scores = (
            {"realism": _score(r.realism), "clarity": _score(r.clarity), "weakness": _score(r.weakness)}
            if r.kind == CANDIDATE
            else {"label_quality": _score(r.label_quality)}
        )
        return {
            "index": int(r.Index),
            "id": r.id,
            "kind": r.kind,
            "slice": r.slice,
            "reason_kind": r.reason_kind,
            "reason": r.reason,
            "label": r.label,
            "suggested": r.suggested or None,
            "scores": scores,
            "url": self.roots.url(r.path),
            "file": os.path.basename(r.path),
            "source": {"id": r.source_id, "url": self.roots.url(source_path)} if source_path else None,
        }

    @classmethod
    def load(cls, cfg: dict[str, Any], lay: Layout) -> ReviewQueue:
        """The queue of a data set from its pipeline outputs: the filter stage's queue, the split (sources and the
        label book) and the label issues; files are served from the data folder and the source's root."""
        queue = pd.read_csv(lay.checklist_dir / "review_queue.csv", dtype=str, keep_default_na=False)
        split = manifest.read(lay.split)
        issues = pd.read_parquet(lay.label_issues) if lay.label_issues.exists() else None
        roots = MediaRoots({"data": lay.data_root, "source": Path(cfg["source"]["root"])})
        labels = [str(x) for x in cfg["labels"]]
        sources = split.set_index("id")["path"].astype(str).to_dict()
        return cls(queue, labels, cfg["modality"], roots, sources, label_book(split, labels, issues))

    def __len__(self) -> int:
        return len(self.items)

    def view(self, index: int, blind: bool) -> dict[str, Any]:
        """Item `index` as the page gets it; blind mode hides the proposed label and the model's suggestion."""
        if not 0 <= index < len(self.items):
            raise NoSuchItem(f"no item {index}: the queue has {len(self.items)}")
        item = dict(self.items[index])
        if blind:
            item.update(label=None, suggested=None)
        return item

    def path_of(self, sample_id: str) -> str:
        """The file queued for a sample (what a labeler deciding it now sees)."""
        if sample_id not in self.paths:
            raise ReviewError(f"sample {sample_id!r} is not in the review queue")
        return self.paths[sample_id]

    def check(self, sample_id: str, decision: str, label: str) -> None:
        """Refuse, with the reason, a decision on a sample not in the queue, an unknown verb, or a label not in
        the label set."""
        if sample_id not in self.position:
            raise ReviewError(f"sample {sample_id!r} is not in the review queue")
        if decision not in DECISIONS:
            raise ReviewError(f"decision {decision!r} is not one of {', '.join(DECISIONS)}")
        if label not in self.labels:
            raise ReviewError(f"label {label!r} is not in the label set ({', '.join(self.labels)})")

    def resolve_decision(self, sample_id: str, decision: str, label: str | None, blind: bool) -> tuple[str, str]:
        """The (decision, label) to store for what a labeler did.

        accept keeps the proposed label; relabel needs a label from the set (relabelling to the proposed label is
        an accept); reject and unsure carry the proposed label. In blind mode the labeler only names a label, so a
        relabel to the proposed label is stored as accept, and accept itself is refused (there is nothing shown to
        accept)."""
        if sample_id not in self.position:
            raise ReviewError(f"sample {sample_id!r} is not in the review queue")
        proposed = self.items[self.position[sample_id]]["label"]
        if decision == "accept" and blind:
            raise ReviewError("blind mode: name the label you hear or see (relabel), or reject / unsure")
        if decision == "relabel":
            if label is None:
                raise ReviewError("relabel needs a label")
            chosen = str(label)
            self.check(sample_id, decision, chosen)
            return ("accept", proposed) if chosen == proposed else ("relabel", chosen)
        self.check(sample_id, decision, proposed)
        return decision, proposed

    def select(self, slice_: str | None = None, reason_kind: str | None = None) -> list[int]:
        """Indices of the items in a slice and of a reason kind (None: any), in queue order."""
        f = self.frame
        keep = np.ones(len(f), dtype=bool)
        if slice_:
            keep &= (f["slice"] == slice_).to_numpy()
        if reason_kind:
            keep &= (f["reason_kind"] == reason_kind).to_numpy()
        return [int(i) for i in np.flatnonzero(keep)]
