"""Version cards: what a dataset version is, where it came from, and how the model retrained on it did.

One card per version (v1: the validated split; v2: the built version), as JSON (all cards of a data set in one
metrics file) and Markdown beside the version. A card records the content hash DVC gives the version's
manifest (the md5 of the file), the git revision of the code that made it (`+dirty` when tracked files had
uncommitted changes to the code), counts per split, class and slice value, what changed against its parent (quarantined
by validation; added per target slice, removed, relabeled by review and label-issue decisions), the params
that shaped it, and the test metrics of the model trained on it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from typing import Any

import pandas as pd

HEADLINE = ("accuracy", "ci_low", "ci_high", "n")  # per test slice, in the Markdown table
CODE_PATHS = ("curation", "augment", "examples")  # the code a version depends on (dvc.lock and outputs change
# while `dvc repro` runs, so they do not count as uncommitted code)


def file_md5(path: str | os.PathLike[str]) -> str:
    """The md5 of a file's bytes: the hash DVC records for a file output."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest()


def git_revision(cwd: str | os.PathLike[str] = ".", paths: tuple[str, ...] = CODE_PATHS) -> str | None:
    """The commit checked out in `cwd`, with `+dirty` when tracked files under `paths` differ from it; None
    outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *paths], cwd=cwd,
                               capture_output=True, text=True, check=True)  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def _counts(series: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in series.astype(str).value_counts().sort_index().items()}


def version_card(
    *,
    dataset: str,
    version: str,
    manifest_df: pd.DataFrame,
    content_md5: str,
    slice_columns: list[str],
    changes: dict[str, Any],
    params: dict[str, Any],
    metrics: dict[str, Any],
    training: dict[str, Any],
    revision: str | None,
) -> dict[str, Any]:
    """The card of one version (module docstring); `changes` is what differs from the parent, as its stage
    recorded it, `metrics` the version's evaluation (test part), `training` its training record."""
    train = manifest_df[manifest_df["split"] == "train"]
    return {
        "dataset": dataset,
        "version": version,
        "content_md5": content_md5,
        "git_revision": revision,
        "samples": len(manifest_df),
        "per_split": _counts(manifest_df["split"]),
        "train_per_label": _counts(train["label"]),
        "train_per_slice_value": {c: _counts(train[c]) for c in slice_columns if c in train.columns},
        "changes": changes,
        "params": params,
        "training": training,
        "test": metrics,
    }


def _table(rows: list[list[str]], header: list[str]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(r) + " |" for r in rows]


def card_markdown(card: dict[str, Any]) -> str:
    """The card as Markdown: identity, counts, changes, test accuracy per slice, and the params (JSON)."""
    lines = [
        f"# {card['dataset']} {card['version']}",
        "",
        f"- content (md5 of the manifest, as DVC hashes it): `{card['content_md5']}`",
        f"- code: git `{card['git_revision'] or 'unknown'}`",
        f"- samples: {card['samples']} ({', '.join(f'{k} {v}' for k, v in card['per_split'].items())})",
        f"- train per label: {', '.join(f'{k}: {v}' for k, v in card['train_per_label'].items())}",
        "",
        "## Changes against the parent",
        "",
        "```json",
        json.dumps(card["changes"], indent=2, sort_keys=True),
        "```",
        "",
        "## Test accuracy per slice (model trained on this version)",
        "",
    ]
    slices = (card["test"] or {}).get("slices", {})
    rows = [[name, *(f"{s[k]:.3f}" if k != "n" else str(s[k]) for k in HEADLINE)] for name, s in slices.items()]
    lines += _table(rows, ["slice", "accuracy", "95% low", "95% high", "n"])
    lines += ["", "## Params", "", "```json", json.dumps(card["params"], indent=2, sort_keys=True), "```", ""]
    return "\n".join(lines)
