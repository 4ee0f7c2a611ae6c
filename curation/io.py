"""Atomic file output: write to a temporary file beside the target, then rename.

An interrupted stage therefore never leaves a half-written output behind.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _umask() -> int:
    """The process's file-creation mask (read by setting it, then putting it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publish(tmp: Path, mode: int) -> None:
    """Give a temporary file or folder the permissions a plain `open` or `mkdir` would have: `mkstemp` and
    `mkdtemp` create them private (0600 / 0700), which would leave outputs unreadable to the group."""
    os.chmod(tmp, mode & ~_umask())


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto `path` only if the block succeeds.

    A reader never sees half a file, and an interrupted write leaves none; the data is not fsynced, so a power
    cut may still lose the last files written (a stage rerun makes them again)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        _publish(tmp_path, 0o666)
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write bytes atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 text atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write JSON atomically, keys sorted so that the bytes are stable across runs."""
    text = json.dumps(_finite(obj), indent=2, sort_keys=True, allow_nan=False, default=_jsonable)
    write_text(path, text + "\n")


def safe_cell(value: object) -> str:
    """`value` as text a spreadsheet will not run: a cell starting with = + - @ tab or CR (CSV injection)
    gets a leading apostrophe, unless it is a plain number such as -3.5."""
    text = "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    if text.startswith(FORMULA_START) and not _NUMBER.match(text):
        return "'" + text
    return text


def markdown_cell(value: object) -> str:
    """`value` as one Markdown table cell: spreadsheet-safe (`safe_cell`), newlines flattened, `\\` and `|`
    escaped, so that a sample's name or a reason can never break a report's table."""
    text = safe_cell(value).replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    return text.replace("\\", "\\\\").replace("|", "\\|")


def write_csv(df: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write a table as CSV atomically, text cells made spreadsheet-safe (`safe_cell`)."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(safe_cell)
    with atomic_path(path) as tmp:
        out.to_csv(tmp, index=False)


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _finite(obj: Any) -> Any:
    """NaN and infinities become null: JSON has no such numbers, and a missing value is what they mean here."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:
        return _finite(obj.item())
    return obj


def _jsonable(obj: Any) -> Any:
    """numpy scalars and arrays, and paths, as plain JSON values."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


@contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a fresh temporary folder beside `path`; it replaces `path` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        _publish(tmp, 0o777)
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            os.replace(target, old)
            shutil.rmtree(old)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
