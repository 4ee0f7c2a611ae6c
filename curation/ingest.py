"""The ingest stage's library: read a data source into a manifest, checking every sample on the way.

All checks run over all samples before anything is decided (lazy validation), so that one run reports
every problem: a path that is absolute, escapes the data root or is missing; a file that cannot be decoded,
is empty or holds NaN; a label that is missing or outside the label set; a duplicate id. `on_error` decides
what happens then: "fail" raises listing every finding, "quarantine" drops those samples and reports them.

Paths in a CSV manifest are relative to the CSV's own folder, and must stay inside the source root.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from curation.manifest import REQUIRED, file_sha256
from curation.media import MediaError, load_audio, load_image, resolve_inside

EXTENSIONS = {
    "audio": (".wav", ".flac", ".ogg", ".mp3"),
    "image": (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"),
}
ON_ERROR = ("fail", "quarantine")
NOISE_POOLS = ("augment", "test")
NOISE_COLUMNS = ("id", "path", "group", "pool", "sha256")
PROGRESS_MIN_FILES = 200  # show a progress bar from this many files on

Decoder = Callable[[Path], np.ndarray]


class IngestError(ValueError):
    """A source that cannot be ingested; the message names every offending sample and the reason."""


@dataclass(frozen=True)
class Finding:
    """One problem with one sample: its id, its path as the source gives it, and why it cannot be used."""

    id: str
    path: str
    reason: str


def ingest(
    source: dict[str, Any],
    modality: str,
    labels: list[str] | None,
    on_error: str,
    media_cfg: dict[str, Any],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read `source` (a CSV manifest or a folder per class) into a manifest frame and an ingest report.

    `source` holds kind (csv | folder), root (no sample may lead outside it), and for csv: manifest,
    path_column (paths relative to the CSV's folder), label_column and optionally id_column (the id defaults
    to the path as given); other CSV columns become string metadata. The frame's paths are joined to the
    root (relative when the root is) so that later stages open them from the working folder; `split` is empty.
    The report holds seen, kept, quarantined, findings, ignored (folder files that are not samples) and the
    kept samples per label.
    """
    _check_on_error(on_error)
    if modality not in EXTENSIONS:
        raise IngestError(f"modality {modality!r}: must be one of {tuple(EXTENSIONS)}")
    decode = _decoder(modality, media_cfg)
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
    allowed = None if labels is None else [str(label) for label in labels]

    def label_problems(row: dict[str, str]) -> list[str]:
        if not row["label"]:
            return ["label is missing"]
        if allowed is not None and row["label"] not in allowed:
            return [f"label {row['label']!r} is not one of the labels {allowed}"]
        return []

    kept, findings = _validate(rows, root, decode, label_problems, on_error, "samples")
    kept["split"] = ""
    counts = Counter(kept["label"])
    report = {
        "listed": len(listed),
        "excluded_by_query": len(listed) - len(rows),
        "seen": len(rows),
        "kept": len(kept),
        "quarantined": len(rows) - len(kept),
        "findings": [asdict(f) for f in findings],
        "ignored": ignored,
        "labels": {label: counts[label] for label in (allowed or sorted(counts))},
    }
    return kept[[*REQUIRED, *(c for c in kept.columns if c not in REQUIRED)]], report


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


def ingest_noise(
    root: str | os.PathLike[str],
    noise_cfg: dict[str, Any] | None,
    media_cfg: dict[str, Any],
    on_error: str = "fail",
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read the background-noise manifest into a frame (id, path, group, pool, sha256, metadata) and a report.

    `noise_cfg` holds manifest, and optionally path_column, group_column, pool_column and id_column; paths
    are relative to the manifest's folder and must stay inside `root` (the data set's source root). Every
    clip must decode at the data's sample rate and not be silent (it could not be mixed at any SNR), and its
    pool must be augment or test. No noise configured (None) gives an empty frame.
    """
    _check_on_error(on_error)
    if not noise_cfg:
        empty = pd.DataFrame({c: pd.Series(dtype=str) for c in NOISE_COLUMNS})
        return empty, {"seen": 0, "kept": 0, "quarantined": 0, "findings": [], "clips": {}}
    audio = _decoder("audio", media_cfg)

    def decode(path: Path) -> np.ndarray:
        samples = audio(path)
        if not np.any(samples):
            raise MediaError(path, "silent: a noise clip must have sound to be mixed at an SNR")
        return samples

    def group_problems(row: dict[str, str]) -> list[str]:
        problems = [] if row["group"] else ["group is missing"]
        if row["pool"] not in NOISE_POOLS:
            problems.append(f"pool {row['pool']!r} is not one of {NOISE_POOLS}")
        return problems

    root_path = _root(root)
    columns = {
        "group": noise_cfg.get("group_column") or "group",
        "pool": noise_cfg.get("pool_column") or "pool",
    }
    rows = _read_csv(Path(_require(noise_cfg, "manifest", "noise")), root_path, noise_cfg, columns, NOISE_COLUMNS)
    kept, findings = _validate(rows, root_path, decode, group_problems, on_error, "noise clips")
    clips = kept.groupby(["group", "pool"]).size()
    report = {
        "seen": len(rows),
        "kept": len(kept),
        "quarantined": len(rows) - len(kept),
        "findings": [asdict(f) for f in findings],
        "clips": {f"{group}/{pool}": int(n) for (group, pool), n in clips.items()},
    }
    return kept[[*NOISE_COLUMNS, *(c for c in kept.columns if c not in NOISE_COLUMNS)]], report


def _check_on_error(on_error: str) -> None:
    if on_error not in ON_ERROR:
        raise IngestError(f"on_error {on_error!r}: must be one of {ON_ERROR}")


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


def _decoder(modality: str, media_cfg: dict[str, Any]) -> Decoder:
    """A function that decodes one file of `modality`, raising MediaError when it cannot be used."""
    if modality == "audio":
        if "sample_rate" not in media_cfg:
            raise IngestError("media settings lack 'sample_rate'")
        sample_rate = int(media_cfg["sample_rate"])
        return lambda path: load_audio(path, sample_rate)
    channels = int(media_cfg.get("channels", 1))
    if channels not in (1, 3):
        raise IngestError(f"image channels {channels}: must be 1 or 3")
    return lambda path: load_image(path, channels)


def _read_csv(
    manifest: Path, root: Path, cfg: dict[str, Any], columns: dict[str, str], reserved: tuple[str, ...]
) -> pd.DataFrame:
    """A CSV manifest's rows as strings: id, rel (the path as given), under (the path under the root),
    the `columns` by their role name, then the metadata columns (none of them named as a `reserved` one)."""
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
    metadata = [c for c in table.columns if c not in wanted]
    clash = [c for c in metadata if c in reserved]
    if clash:
        raise IngestError(
            f"manifest {manifest}: column(s) {clash} clash with the manifest's own columns; rename them "
            "(a given split can then be named in split.fixed_column), or name the id column in id_column"
        )
    prefix = os.path.relpath(manifest.parent, root)
    out = pd.DataFrame(
        {
            "id": table[id_col] if id_col else table[path_col],
            "rel": table[path_col],
            "under": [rel if os.path.isabs(rel) else os.path.join(prefix, rel) for rel in table[path_col]],
            **{role: table[col] for role, col in columns.items()},
        }
    )
    return pd.concat([out, table[metadata]], axis=1)


def _scan_folder(root: Path, extensions: tuple[str, ...]) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """One row per media file under a class folder (label = top folder), sorted; and the files left out.

    Files outside any class folder, of another type, or behind a symlinked folder are listed as ignored
    (with the reason) rather than dropped unseen; symlinked files are kept and checked like any other.
    """
    rows: list[dict[str, str]] = []
    ignored: list[dict[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames.sort()
        for name in [d for d in dirnames if (here / d).is_symlink()]:
            dirnames.remove(name)
            rel = (here / name).relative_to(root).as_posix()
            ignored.append({"path": rel, "reason": "symbolic link to a folder, not followed"})
        for name in sorted(filenames):
            rel_path = (here / name).relative_to(root)
            rel = rel_path.as_posix()
            if len(rel_path.parts) == 1:
                ignored.append({"path": rel, "reason": "not inside a class folder"})
            elif rel_path.suffix.lower() not in extensions:
                ignored.append({"path": rel, "reason": f"not a {'/'.join(extensions)} file"})
            else:
                rows.append({"id": rel, "rel": rel, "under": rel, "label": rel_path.parts[0]})
    rows.sort(key=lambda r: r["rel"])
    return pd.DataFrame(rows, columns=["id", "rel", "under", "label"]), ignored


def _validate(
    rows: pd.DataFrame,
    root: Path,
    decode: Decoder,
    row_problems: Callable[[dict[str, str]], list[str]],
    on_error: str,
    what: str,
) -> tuple[pd.DataFrame, list[Finding]]:
    """Check every row (id, path, `row_problems`, decoding); then fail listing all findings, or drop bad rows.

    Returns the kept rows, sorted by id, with their root-joined `path` and the file's `sha256`.
    """
    if rows.empty:
        raise IngestError(f"data root {root}: no {what} found")
    findings: list[Finding] = []
    bad: set[int] = set()
    files: dict[int, Path] = {}
    id_counts = Counter(rows["id"])
    records = rows.to_dict("records")
    for i, row in enumerate(tqdm(records, desc=f"ingest {what}", disable=len(records) < PROGRESS_MIN_FILES)):
        problems = []
        if not row["id"]:
            problems.append("id is missing")
        elif id_counts[row["id"]] > 1:
            problems.append(f"duplicate id: {id_counts[row['id']]} rows share it")
        problems += row_problems(row)
        if not row["rel"]:
            problems.append("path is missing")
        else:
            try:
                files[i] = resolve_inside(root, row["under"])
                decode(files[i])
            except MediaError as exc:
                problems.append(exc.reason)
        findings += [Finding(row["id"], row["rel"], reason) for reason in problems]
        if problems:
            bad.add(i)
    if findings and on_error == "fail":
        raise IngestError(
            f"{len(findings)} problem(s) in {len(bad)} of {len(records)} {what} under {root} "
            "(on_error: fail; set on_error: quarantine to drop them instead):\n  "
            + "\n  ".join(f"id {f.id!r}, path {f.path!r}: {f.reason}" for f in findings)
        )
    kept = [i for i in range(len(records)) if i not in bad]
    if not kept:
        raise IngestError(f"data root {root}: every one of the {len(records)} {what} was quarantined")
    out = rows.iloc[kept].drop(columns=["rel", "under"]).copy()
    out["path"] = [Path(os.path.normpath(root / records[i]["under"])).as_posix() for i in kept]
    out["sha256"] = [file_sha256(files[i]) for i in kept]
    return out.sort_values("id", kind="stable").reset_index(drop=True), findings


def report_markdown(report: dict[str, Any]) -> str:
    """The ingest report as Markdown: counts, samples per label, every finding and every ignored file.

    A `noise` entry (the report of `ingest_noise`) adds its counts, clips per group and pool, and findings.
    """
    lines = [
        "# Ingest report",
        "",
        *_counts(report),
        "",
        "## Samples per label",
        "",
        "| label | samples |",
        "|---|---:|",
        *(f"| {_cell(label)} | {n} |" for label, n in report["labels"].items()),
        "",
        "## Findings",
        "",
        *_findings(report["findings"]),
    ]
    if report.get("ignored"):
        lines += ["", "## Ignored files", "", "| path | reason |", "|---|---|"]
        lines += [f"| {_cell(f['path'])} | {_cell(f['reason'])} |" for f in report["ignored"]]
    noise = report.get("noise")
    if noise and noise["seen"]:
        lines += ["", "## Background noise", "", *_counts(noise), "", "| group/pool | clips |", "|---|---:|"]
        lines += [f"| {_cell(key)} | {n} |" for key, n in noise["clips"].items()]
        lines += ["", "### Noise findings", "", *_findings(noise["findings"])]
    return "\n".join(lines) + "\n"


def _counts(report: dict[str, Any]) -> list[str]:
    return [
        "| seen | kept | quarantined |",
        "|---:|---:|---:|",
        f"| {report['seen']} | {report['kept']} | {report['quarantined']} |",
    ]


def _findings(findings: list[dict[str, str]]) -> list[str]:
    if not findings:
        return ["No findings: every file was usable."]
    return ["| id | path | reason |", "|---|---|---|"] + [
        f"| {_cell(f['id'])} | {_cell(f['path'])} | {_cell(f['reason'])} |" for f in findings
    ]


def _cell(value: object) -> str:
    """Text safe inside a Markdown table cell."""
    return str(value).replace("|", "\\|").replace("\n", " ")
