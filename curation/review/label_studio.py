"""Label Studio interop: the queue as Label Studio tasks, and its annotations back as decisions.

Tasks (Label Studio's JSON import format) carry the sample's file as a local-files URL (Label Studio started with
`LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true` and `LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT` at `document_root`),
our sample id, reason and slice, and the proposed label as a prediction so the annotator starts from it. The
labeling config (`labeling_config`) offers every label plus `(reject)` and `(unsure)`. An export of the project
(Label Studio's JSON export) reads back one decision per annotation: the proposed label is an accept, another
label a relabel; cancelled (skipped) annotations are counted and left out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

from curation.review.agreement import REJECTED
from curation.review.queue import UNSURE_CHOICE, ReviewError, ReviewQueue

REJECT, UNSURE = REJECTED, UNSURE_CHOICE
FROM_NAME = "label"
MEDIA_PREFIX = "/data/local-files/?d="


def _media_tag(modality: str) -> str:
    return "Image" if modality == "image" else "Audio"


def labeling_config(labels: list[str], modality: str) -> str:
    """The Label Studio labeling config (XML) for the queue's tasks: the media, the reason, one choice per label
    plus reject and unsure. Every label is XML-escaped."""
    clash = sorted({REJECT, UNSURE} & set(labels))
    if clash:
        raise ReviewError(f"label(s) {', '.join(clash)} clash with the reject / unsure choices")
    media = modality if modality in ("image", "audio") else "audio"
    choices = "\n".join(f"    <Choice value={quoteattr(x)}/>" for x in [*labels, REJECT, UNSURE])
    return (
        "<View>\n"
        f'  <{_media_tag(modality)} name="{media}" value="${media}"/>\n'
        '  <Header value="$reason"/>\n'
        f'  <Choices name="{FROM_NAME}" toName="{media}" choice="single" showInline="true">\n'
        f"{choices}\n"
        "  </Choices>\n"
        "</View>\n"
    )


def _local_url(path: str, document_root: Path) -> str:
    rel = os.path.relpath(Path(path).resolve(), document_root.resolve())
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        raise ReviewError(f"{path}: outside the Label Studio document root {document_root}; pass another root")
    return MEDIA_PREFIX + quote(Path(rel).as_posix(), safe="/")


def tasks(queue: ReviewQueue, document_root: str | os.PathLike[str] = ".") -> list[dict[str, Any]]:
    """One Label Studio task per queue item, in queue order (task ids 1..n)."""
    media = queue.modality if queue.modality in ("image", "audio") else "audio"
    root = Path(document_root)
    out = []
    for pos, r in enumerate(queue.frame.itertuples(), start=1):
        out.append(
            {
                "id": pos,
                "data": {
                    media: _local_url(r.path, root),
                    "sample_id": r.id,
                    "path": r.path,
                    "proposed": r.label,
                    "reason": r.reason,
                    "slice": r.slice,
                    "kind": r.kind,
                },
                "predictions": [
                    {
                        "model_version": "curation-queue",
                        "result": [
                            {
                                "from_name": FROM_NAME,
                                "to_name": media,
                                "type": "choices",
                                "value": {"choices": [r.label]},
                            }
                        ],
                    }
                ],
            }
        )
    return out


@dataclass(frozen=True)
class Imported:
    """Decisions read from a Label Studio export, and what was left out with the reason."""

    decisions: list[dict[str, Any]]
    skipped: list[str]


def _annotator(annotation: dict[str, Any]) -> str:
    who = annotation.get("completed_by")
    if isinstance(who, dict):
        who = who.get("email") or who.get("username") or who.get("id")
    return f"label-studio:{who}" if who not in (None, "") else "label-studio"


def _choice(annotation: dict[str, Any]) -> str | None:
    for result in annotation.get("result") or []:
        if result.get("from_name") == FROM_NAME and result.get("type") == "choices":
            picked = (result.get("value") or {}).get("choices") or []
            return str(picked[0]) if picked else None
    return None


def read_annotations(export: list[dict[str, Any]], queue: ReviewQueue) -> Imported:
    """Decisions (sample_id, labeler, decision, label, note, request_id, path) from a Label Studio JSON export;
    `path` is the file the task showed (empty for tasks exported before tasks recorded it).

    Raises naming the task for a sample not in the queue or a choice not in the label set; a re-import gives
    the same request ids (`label-studio:<task>:<annotation>`), so the store does not take it twice."""
    decisions, skipped, problems = [], [], []
    for task in export:
        sid = (task.get("data") or {}).get("sample_id")
        for ann in task.get("annotations") or []:
            where = f"task {task.get('id')} annotation {ann.get('id')}"
            if ann.get("was_cancelled"):
                skipped.append(f"{where}: cancelled (skipped) in Label Studio")
                continue
            choice = _choice(ann)
            if choice is None:
                skipped.append(f"{where}: no choice made")
                continue
            verb = {REJECT: "reject", UNSURE: "unsure"}.get(choice, "relabel")
            try:
                decision, label = queue.resolve_decision(str(sid), verb, choice if verb == "relabel" else None, False)
            except ReviewError as exc:
                problems.append(f"{where}: {exc}")
                continue
            decisions.append(
                {
                    "sample_id": str(sid),
                    "labeler": _annotator(ann),
                    "decision": decision,
                    "label": label,
                    "note": "",
                    "request_id": f"label-studio:{task.get('id')}:{ann.get('id')}",
                    "path": str((task.get("data") or {}).get("path") or ""),
                }
            )
    if problems:
        raise ReviewError("cannot import the Label Studio export:\n  " + "\n  ".join(problems))
    return Imported(decisions, skipped)
