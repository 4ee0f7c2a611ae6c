"""The manifest: one row per sample, the common currency of every stage.

Required columns: `id` (unique), `path` (resolvable from the project folder), `label`, `split`
(train / dev / test, or empty before the split stage) and `sha256` (content hash of the file).
Any other column is metadata and can define a slice. Stored as Parquet.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pandas as pd

from curation.io import atomic_path

REQUIRED = ("id", "path", "label", "split", "sha256")
SPLITS = ("train", "dev", "test")


class ManifestError(ValueError):
    """A manifest that breaks the schema; the message names every offending row and the reason."""


def validate(df: pd.DataFrame) -> pd.DataFrame:
    """Check the schema and return the frame with the required columns as strings; raise listing every failure."""
    failures: list[str] = []
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ManifestError(f"manifest lacks required column(s): {', '.join(missing)}")
    for col in REQUIRED:
        nulls = df.index[df[col].isna()].tolist()
        failures += [f"row {i}: empty {col}" for i in nulls]
    dup = df["id"][df["id"].duplicated(keep=False)]
    failures += [f"id {v!r}: duplicated" for v in sorted(set(dup.astype(str)))]
    bad_split = df.loc[~df["split"].isin([*SPLITS, ""]) & df["split"].notna(), ["id", "split"]]
    failures += [f"id {r.id!r}: split {r.split!r} is not one of {SPLITS}" for r in bad_split.itertuples()]
    if failures:
        raise ManifestError("invalid manifest:\n  " + "\n  ".join(failures))
    out = df.copy()
    for col in REQUIRED:
        out[col] = out[col].astype(str)
    return out


def read(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read and validate a Parquet manifest."""
    return validate(pd.read_parquet(path))


def write(df: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Validate and write a manifest atomically, rows in id order so that the bytes are stable."""
    out = validate(df).sort_values("id", kind="stable").reset_index(drop=True)
    with atomic_path(path) as tmp:
        out.to_parquet(tmp, index=False)


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def metadata_columns(df: pd.DataFrame) -> list[str]:
    """The columns that are not part of the required schema."""
    return [c for c in df.columns if c not in REQUIRED]
