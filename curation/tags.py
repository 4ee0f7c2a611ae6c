"""Error-analysis tags: boolean properties of evaluated samples, each one a slice of the error analysis.

A tag named `dark` is the bool column `tag:dark` of a predictions frame (True = the sample has the tag);
slice names refer to it as `tag=dark`. Tags come from four sources, each a pure function returning a
frame of `tag:*` columns aligned to the predictions frame's index:
- `finding_tags`: every validate-stage check with a finding on a sample (`tag:near_duplicate`, ...);
- `note_tags`: hashtags in the labelers' notes (`#mumbled` -> `tag:mumbled`);
- `metadata_tags`: named boolean-like metadata columns (True/False, 1/0, "yes"/"no"; missing = False);
- `function_tags`: user functions registered in params (`tags.functions: {quiet: examples/tag_functions.py:quiet}`)
  that get the sample (its fields plus "x", the loaded array) and return a bool.
`add_tags` adds them all to the frame, a tag from two sources being their OR. Stress-test rows inherit the
tags of the sample they were made from (`source_id`), so that a tag's slice holds every condition of it.
Tag names are `[a-z0-9_-]+` after lower-casing; anything else is refused, never silently renamed.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import math
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from curation.slices import TAG_PREFIX

TAG_NAME = re.compile(r"[a-z0-9_-]+")
HASHTAG = re.compile(r"(?<![\w#-])#([\w-]+)")  # a '#' not inside a word, then the word (validated after)
TRUE_TEXT = frozenset({"true", "yes", "1"})
FALSE_TEXT = frozenset({"false", "no", "0", ""})  # "" is a missing cell in CSVs read with keep_default_na=False

TagFunction = Callable[[dict[str, Any]], Any]


class TagError(ValueError):
    """A tag that cannot be computed: a bad name, spec, metadata value or function result; names the cause."""


def tag_name(name: str) -> str:
    """`name` lower-cased, refused unless it is `[a-z0-9_-]+` (it becomes both a column and a slice name)."""
    lowered = str(name).lower()
    if not TAG_NAME.fullmatch(lowered):
        raise TagError(f"tag name {name!r} is not allowed: use letters, digits, '_' and '-' only")
    return lowered


def tag_column(name: str) -> str:
    """The frame column holding tag `name` (`dark` -> `tag:dark`)."""
    return TAG_PREFIX + tag_name(name)


def _source_keys(frame: pd.DataFrame) -> pd.Series:
    """The id of the original sample each row was made from: source_id, or id where that is absent/empty."""
    ids = frame["id"].astype(str)
    if "source_id" not in frame.columns:
        return ids
    source = frame["source_id"]
    present = source.notna() & (source.astype(str) != "")
    return source.astype(str).where(present, ids)


def _require(table: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    """Raise naming the columns `table` lacks."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise TagError(f"{what}: missing column(s) {', '.join(missing)}")


def _tag_frame(frame: pd.DataFrame, tags: Mapping[str, Iterable[bool]]) -> pd.DataFrame:
    """Bool `tag:*` columns (sorted by name) aligned to `frame`'s index."""
    data = {TAG_PREFIX + name: np.asarray(list(tags[name]), dtype=bool) for name in sorted(tags)}
    return pd.DataFrame(data, index=frame.index, columns=list(data))


def finding_tags(
    frame: pd.DataFrame,
    findings: pd.DataFrame,
    *,
    checks: Iterable[str] | None = None,
    severities: Iterable[str] | None = None,
) -> pd.DataFrame:
    """One tag per check with a finding on a sample (findings.csv rows of kind `sample`), set on every row
    whose source_id (else id) is the finding's id. `checks` limits the tags to those checks and gives each
    a column even without findings (stable columns across versions); `severities` keeps only findings of
    those severities. Default: every check and severity present."""
    _require(findings, ("id", "check"), "findings")
    rows = findings
    if "kind" in rows.columns:
        rows = rows[rows["kind"].astype(str) == "sample"]
    if severities is not None:
        _require(findings, ("severity",), "findings")
        rows = rows[rows["severity"].astype(str).isin({str(s) for s in severities})]
    wanted = None if checks is None else {tag_name(c) for c in checks}
    ids_by_tag: dict[str, set[str]] = {name: set() for name in wanted or ()}
    for check, group in rows.groupby(rows["check"].astype(str), sort=True):
        name = tag_name(check)
        if wanted is None or name in wanted:
            ids_by_tag.setdefault(name, set()).update(group["id"].astype(str))
    keys = _source_keys(frame)
    return _tag_frame(frame, {name: keys.isin(ids) for name, ids in ids_by_tag.items()})


def note_hashtags(note: str) -> list[str]:
    """The tag names in a labeler's note: `#word` (letters, digits, '_', '-') lower-cased, in order of first use.
    A '#' inside a word (`C#`, `take#2`) is not a tag; a hashtag with other characters (`#café`) is refused."""
    names: list[str] = []
    for word in HASHTAG.findall(note):
        name = tag_name(word)
        if name not in names:
            names.append(name)
    return names


def note_tags(frame: pd.DataFrame, decisions: pd.DataFrame) -> pd.DataFrame:
    """One tag per hashtag in the decisions' notes (`data/reviews/<ds>.csv`), set on every row whose id or
    source_id is the decision's id (so a tag on an original sample also marks its stress-test copies)."""
    _require(decisions, ("id", "note"), "decisions")
    ids_by_tag: dict[str, set[str]] = {}
    for decision_id, note in zip(decisions["id"], decisions["note"], strict=True):
        if not isinstance(note, str):
            continue  # an empty note read as NaN
        try:
            names = note_hashtags(note)
        except TagError as exc:
            raise TagError(f"decision {decision_id!r}: note {note!r}: {exc}") from exc
        for name in names:
            ids_by_tag.setdefault(name, set()).add(str(decision_id))
    ids = frame["id"].astype(str)
    keys = _source_keys(frame)
    return _tag_frame(frame, {name: ids.isin(s) | keys.isin(s) for name, s in ids_by_tag.items()})


def _boolish(value: Any) -> bool | None:
    """`value` as a bool when it is boolean-like (missing = False), else None."""
    if value is None or value is pd.NA or value is pd.NaT:
        return False
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | float | np.integer | np.floating):
        if isinstance(value, float | np.floating) and math.isnan(value):
            return False
        return bool(value) if value in (0, 1) else None
    if isinstance(value, str):
        text = value.strip().lower()
        if text in TRUE_TEXT:
            return True
        if text in FALSE_TEXT:
            return False
    return None


def metadata_tags(frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """One tag per named metadata column (the column's name, lower-cased), from its boolean-like values:
    True/False, 1/0, "true"/"false", "yes"/"no", "1"/"0" (any case); missing (NaN, None, "") = False.
    Any other value raises naming the column and the value: a typo must not quietly become False."""
    tags: dict[str, np.ndarray] = {}
    for column in columns:
        if column not in frame.columns:
            raise TagError(f"tags.metadata: column {column!r} is not in the data; columns: {', '.join(frame.columns)}")
        name = tag_name(column)
        if name in tags:
            raise TagError(f"tags.metadata: columns give tag {name!r} twice")
        values = frame[column].tolist()
        mapped = [_boolish(v) for v in values]
        bad = next((v for v, m in zip(values, mapped, strict=True) if m is None), None)
        if any(m is None for m in mapped):
            raise TagError(
                f"tags.metadata: column {column!r} is not boolean-like: value {bad!r} "
                "(allowed: True/False, 1/0, true/false, yes/no, or missing)"
            )
        tags[name] = np.asarray(mapped, dtype=bool)
    return _tag_frame(frame, tags)


def _load_file(path: Path, spec: str) -> ModuleType:
    """Import a Python file as a module under a name derived from its absolute path."""
    if not path.is_file():
        raise TagError(f"tag function {spec!r}: no such file {str(path)!r}")
    name = "_curation_tags_" + hashlib.sha1(str(path).encode("utf-8")).hexdigest()[:12]
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise TagError(f"tag function {spec!r}: cannot import {str(path)!r} (not a Python file?)")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise TagError(f"tag function {spec!r}: importing {str(path)!r} failed: {exc!r}") from exc
    return module


def resolve_function(spec: str, root: str | Path | None = None) -> TagFunction:
    """The callable named by `spec`: "package.module:function" (imported), or "path/to/file.py:function"
    (a path, relative to `root` or the working folder, when the part before the last ':' ends in .py or
    contains a path separator). Every way a spec can be wrong raises a TagError saying which."""
    if not isinstance(spec, str) or ":" not in spec:
        raise TagError(f"tag function {spec!r}: expected 'module:function' or 'path/file.py:function'")
    target, _, attr = spec.rpartition(":")
    if not target or not attr:
        raise TagError(f"tag function {spec!r}: expected 'module:function' or 'path/file.py:function'")
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target)
        if not path.is_absolute():
            path = Path(root or Path.cwd()) / path
        module = _load_file(path.resolve(), spec)
    else:
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as exc:
            raise TagError(f"tag function {spec!r}: module not found: {exc}") from exc
        except Exception as exc:
            raise TagError(f"tag function {spec!r}: importing {target!r} failed: {exc!r}") from exc
    try:
        fn = getattr(module, attr)
    except AttributeError as exc:
        raise TagError(f"tag function {spec!r}: {target!r} has no attribute {attr!r}") from exc
    if not callable(fn):
        raise TagError(f"tag function {spec!r}: {attr!r} is a {type(fn).__name__}, not callable")
    return fn


def function_tags(
    frame: pd.DataFrame,
    functions: Mapping[str, str],
    load: Callable[[str], np.ndarray] | None,
    *,
    root: str | Path | None = None,
) -> pd.DataFrame:
    """One tag per registered function (tag name -> spec, see `resolve_function`), applied to every row as
    `fn(sample)`: a fresh dict of the row's fields plus "x", the row's media from `load(path)` (read-only;
    each row loaded once, and only when some function is registered). A result that is not a bool (numpy
    bool is fine) or an exception raises a TagError naming the tag, the spec and the sample."""
    resolved = {tag_name(name): (str(spec), resolve_function(spec, root)) for name, spec in functions.items()}
    if len(resolved) != len(functions):
        raise TagError(f"tags.functions: names {sorted(functions)} collide after lower-casing")
    if not resolved:
        return _tag_frame(frame, {})
    if load is None:
        raise TagError("tags.functions: functions are registered but no `load` was given to read the samples")
    if "x" in frame.columns:
        raise TagError("tags.functions: the data has a column 'x', which clashes with the sample's array 'x'")
    _require(frame, ("id", "path"), "tags.functions: the data")
    results: dict[str, list[bool]] = {name: [] for name in resolved}
    for row in frame.to_dict("records"):
        try:
            x = np.asarray(load(row["path"]))
        except Exception as exc:
            raise TagError(f"tags.functions: cannot load sample {row['id']!r} ({row['path']}): {exc}") from exc
        x = x.view()
        x.flags.writeable = False  # one array serves every function: none may change it for the next
        for name, (spec, fn) in resolved.items():
            try:
                value = fn({**row, "x": x})
            except Exception as exc:
                raise TagError(f"tag {name!r} ({spec}) failed on sample {row['id']!r}: {exc!r}") from exc
            if not isinstance(value, bool | np.bool_):
                raise TagError(
                    f"tag {name!r} ({spec}) returned {type(value).__name__} {value!r} on sample {row['id']!r}, "
                    "not a bool"
                )
            results[name].append(bool(value))
    return _tag_frame(frame, results)


def add_tags(
    frame: pd.DataFrame,
    *,
    findings: pd.DataFrame | None = None,
    decisions: pd.DataFrame | None = None,
    metadata: Iterable[str] = (),
    functions: Mapping[str, str] | None = None,
    load: Callable[[str], np.ndarray] | None = None,
    checks: Iterable[str] | None = None,
    severities: Iterable[str] | None = None,
    root: str | Path | None = None,
) -> pd.DataFrame:
    """`frame` with every source's tag columns added after its own columns, sorted by tag name; a tag two
    sources give is their OR. A tag whose column `frame` already has is refused (a name clash), so that a
    tag's meaning never depends on which of two same-named columns won."""
    parts = [metadata_tags(frame, metadata)]
    if findings is not None:
        parts.append(finding_tags(frame, findings, checks=checks, severities=severities))
    if decisions is not None:
        parts.append(note_tags(frame, decisions))
    if functions:
        parts.append(function_tags(frame, functions, load, root=root))
    merged: dict[str, np.ndarray] = {}
    for part in parts:
        for column in part.columns:
            values = part[column].to_numpy(dtype=bool)
            merged[column] = merged[column] | values if column in merged else values
    clash = sorted(c for c in merged if c in frame.columns)
    if clash:
        raise TagError(f"tags: the data already has column(s) {clash}; rename them or drop the tag")
    tags = pd.DataFrame({c: merged[c] for c in sorted(merged)}, index=frame.index)
    return pd.concat([frame, tags], axis=1)
