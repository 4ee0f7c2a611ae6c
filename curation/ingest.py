"""The ingest stage's library: adapters that list a data source as one table, without judging it.

Two adapters cover any layout through params, with no code per data set: a CSV manifest (paths relative to
the CSV's own folder, any metadata columns) and a folder per class. Both give one row per listed sample:
`id`, `path` (as the source gives it), `under` (the path under the data root), `label` and metadata as
strings. Nothing is read or dropped here: the validate stage reads every file once and reports every
problem (`curation/validate.py`). Files are referenced where they are, never copied.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from curation.manifest import REQUIRED

EXTENSIONS = {
    "audio": (".wav", ".flac", ".ogg", ".mp3"),
    "image": (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"),
}
NOISE_COLUMNS = ("id", "path", "group", "pool", "sha256")
LISTING_COLUMNS = ("id", "path", "under", "label")
# Columns ingest and validate add; a source column may not be named so (nor start with "source:", the prefix
# under which validate sets aside a source column named like a measurement).
STAGE_COLUMNS = ("under", "listing_error", "path_error", "resolved", "status", "dup_group")


class IngestError(ValueError):
    """A source that cannot be listed (bad settings, unreadable manifest); the message names the cause."""


def list_source(source: dict[str, Any], modality: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """List `source` (a CSV manifest or a folder per class) as a table and a report of what was listed.

    `source` holds kind (csv | folder), root (no sample may lead outside it; checked by validate), and for
    csv: manifest, path_column, label_column, optionally id_column (the id defaults to the path as given),
    `rename` (metadata columns to rename, e.g. {split: given_split} when a column is named like one the
    manifest adds) and `query` (a pandas query selecting rows). The report holds listed, excluded_by_query,
    seen (rows handed to validate) and ignored (folder files that are not samples, with the reason).
    """
    if modality not in EXTENSIONS:
        raise IngestError(f"modality {modality!r}: must be one of {tuple(EXTENSIONS)}")
    root = _root(_require(source, "root", "source"))
    kind = _require(source, "kind", "source")
    if kind == "csv":
        columns = {"label": source.get("label_column") or "label"}
        listed = _read_csv(Path(_require(source, "manifest", "source")), root, source, columns, REQUIRED)
        rows = select_rows(listed, source.get("query"))
        ignored: list[dict[str, str]] = []
    elif kind == "folder":
        rows, ignored = _scan_folder(root, EXTENSIONS[modality])
        listed = rows
    else:
        raise IngestError(f"source kind {kind!r}: must be 'csv' or 'folder'")
    if rows.empty:
        raise IngestError(f"data root {root}: no samples listed")
    report = {
        "listed": len(listed),
        "excluded_by_query": len(listed) - len(rows),
        "seen": len(rows),
        "ignored": ignored,
    }
    return rows.reset_index(drop=True), report


def list_noise(root: str | os.PathLike[str], noise_cfg: dict[str, Any] | None) -> pd.DataFrame:
    """List the background-noise manifest: id, path, under, group, pool and metadata (empty without one).

    `noise_cfg` holds manifest, and optionally path_column, group_column, pool_column and id_column; paths
    are relative to the manifest's folder and must stay inside `root` (the data set's source root).
    """
    if not noise_cfg:
        return pd.DataFrame({c: pd.Series(dtype=str) for c in ("id", "path", "under", "group", "pool")})
    columns = {
        "group": noise_cfg.get("group_column") or "group",
        "pool": noise_cfg.get("pool_column") or "pool",
    }
    reserved = (*NOISE_COLUMNS, "label")  # validate reads a clip's group as its label
    return _read_csv(Path(_require(noise_cfg, "manifest", "noise")), _root(root), noise_cfg, columns, reserved)


def select_rows(rows: pd.DataFrame, query: str | None) -> pd.DataFrame:
    """The rows a pandas `query` over the CSV's columns keeps (all without one); numeric-looking columns
    compare as numbers, so `index < 10` means what it says. Used to run on a subset of a large source."""
    if not query:
        return rows
    typed = rows.copy()
    for col in typed.columns:
        numbers = pd.to_numeric(typed[col], errors="coerce")
        if numbers.notna().all():
            typed[col] = numbers
    try:
        keep = typed.eval(query)
    except (SyntaxError, ValueError, KeyError, TypeError, pd.errors.UndefinedVariableError) as exc:
        raise IngestError(f"source query {query!r} cannot be evaluated: {exc}") from exc
    if not (isinstance(keep, pd.Series) and keep.dtype == bool):
        raise IngestError(f"source query {query!r} must give True or False per row")
    return rows[keep.to_numpy()].reset_index(drop=True)


def _require(cfg: dict[str, Any], key: str, where: str) -> Any:
    """A required configuration value."""
    if cfg.get(key) in (None, ""):
        raise IngestError(f"{where} configuration lacks {key!r}")
    return cfg[key]


def _root(root: str | os.PathLike[str]) -> Path:
    """The data root, which must be a folder."""
    path = Path(root)
    if not path.is_dir():
        raise IngestError(f"data root {root}: not a folder")
    return path


def _read_csv(
    manifest: Path, root: Path, cfg: dict[str, Any], columns: dict[str, str], reserved: tuple[str, ...]
) -> pd.DataFrame:
    """A CSV manifest's rows as strings: id, path (as given), under (the path under the root), the `columns`
    by their role name, then the metadata columns, renamed per `cfg["rename"]` (none may be `reserved`)."""
    path_col = cfg.get("path_column") or "path"
    id_col = cfg.get("id_column")
    try:
        table = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    except FileNotFoundError as exc:
        raise IngestError(f"manifest {manifest}: file not found") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise IngestError(f"manifest {manifest}: cannot parse as CSV: {exc}") from exc
    wanted = [c for c in (path_col, id_col, *columns.values()) if c]
    missing = [c for c in wanted if c not in table.columns]
    if missing:
        raise IngestError(f"manifest {manifest}: no column(s) {missing}; it has {list(table.columns)}")
    rename = cfg.get("rename") or {}
    unknown = sorted(set(rename) - set(table.columns))
    if unknown:
        raise IngestError(f"manifest {manifest}: rename names column(s) {unknown} it does not have")
    metadata = table[[c for c in table.columns if c not in wanted]].rename(columns=rename)
    clash = [c for c in metadata.columns if c in (*reserved, *STAGE_COLUMNS) or c.startswith("source:")]
    if clash:
        raise IngestError(
            f"manifest {manifest}: column(s) {clash} clash with the manifest's own columns; rename them with "
            "source.rename (e.g. {split: given_split}; a given split is then named in split.fixed_column)"
        )
    prefix = os.path.relpath(manifest.parent, root)
    out = pd.DataFrame(
        {
            "id": table[id_col] if id_col else table[path_col],
            "path": table[path_col],
            "under": [
                rel if os.path.isabs(rel) else os.path.normpath(os.path.join(prefix, rel)) for rel in table[path_col]
            ],
            **{role: table[col] for role, col in columns.items()},
            "listing_error": "",
        }
    )
    return pd.concat([out, metadata], axis=1)


def _scan_folder(root: Path, extensions: tuple[str, ...]) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """One row per media file under a class folder (label = top folder), sorted; and the files left out.

    Files outside any class folder, of another type, or behind a symlinked folder are listed as ignored
    (with the reason) rather than dropped unseen; symlinked files are kept and checked like any other. A
    file name that is not valid UTF-8 cannot be stored in a manifest: its row carries a `listing_error`.
    """
    rows: list[dict[str, str]] = []
    ignored: list[dict[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames.sort()
        for name in [d for d in dirnames if (here / d).is_symlink()]:
            dirnames.remove(name)
            ignored.append({"path": _printable(here / name, root), "reason": "symbolic link to a folder, not followed"})
        for name in sorted(filenames):
            rel_path = (here / name).relative_to(root)
            rel = _printable(here / name, root)
            if len(rel_path.parts) == 1:
                ignored.append({"path": rel, "reason": "not inside a class folder"})
            elif rel_path.suffix.lower() not in extensions:
                ignored.append({"path": rel, "reason": f"not a {'/'.join(extensions)} file"})
            elif rel != rel_path.as_posix():
                error = f"file name is not valid UTF-8 ({os.fsencode(rel_path.as_posix())!r}); rename the file"
                rows.append({"id": rel, "path": rel, "under": "", "label": _printable(root / rel_path.parts[0], root),
                             "listing_error": error})  # fmt: skip
            else:
                rows.append({"id": rel, "path": rel, "under": rel, "label": rel_path.parts[0], "listing_error": ""})
    rows.sort(key=lambda r: r["path"])
    return pd.DataFrame(rows, columns=[*LISTING_COLUMNS, "listing_error"]), ignored


def _printable(path: Path, root: Path) -> str:
    """`path` under `root` as text that can be stored and shown: undecodable bytes become \\x escapes."""
    return os.fsencode(path.relative_to(root).as_posix()).decode("utf-8", "backslashreplace")
