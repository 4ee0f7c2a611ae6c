"""The review store: every labeler's decisions, durable, in one SQLite file (WAL mode).

A decision is a row that is never edited except to mark it undone; a labeler's current decision on a sample is
their latest row that is not undone, so the full history (who decided what, when, and what they took back)
stays in the file. Each write is one transaction committed with `synchronous=FULL`: once `decide` returns, the
decision survives the server being killed. A client may send a `request_id` with a decision; sending the same
one again (a retry after a lost answer) returns the stored row instead of adding a second one.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from curation.versions import DECISIONS

SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sample_id TEXT NOT NULL,
    labeler TEXT NOT NULL,
    decision TEXT NOT NULL,
    label TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    blind INTEGER NOT NULL DEFAULT 0,
    decided_at TEXT NOT NULL,
    request_id TEXT UNIQUE,
    undone_at TEXT,
    path TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS decisions_by_labeler ON decisions (labeler, seq);
"""
BUSY_TIMEOUT_MS = 10_000  # a writer waits this long for another writer's transaction before giving up


@dataclass(frozen=True)
class Decision:
    """One stored decision (a row of the store)."""

    seq: int
    sample_id: str
    labeler: str
    decision: str
    label: str
    note: str
    blind: bool
    decided_at: str
    request_id: str | None
    undone_at: str | None
    path: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Decision:
        """A decision from its stored row (SQLite keeps `blind` as 0 / 1); columns a later version adds are left
        out."""
        return cls(**{name: row[name] for name in cls.__dataclass_fields__} | {"blind": bool(row["blind"])})

    def to_dict(self) -> dict[str, object]:
        """The decision as plain JSON values."""
        return asdict(self)


def _use_wal(con: sqlite3.Connection) -> None:
    """Switch the file to write-ahead logging. SQLite does not wait on the busy handler while another connection
    switches the journal mode, so servers opening one store at once could fail with 'database is locked' (about
    1 in 200 with 8 at once): retry for up to BUSY_TIMEOUT_MS, as every other statement waits."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            con.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class ReviewStore:
    """Decisions of every labeler of one data set, in the SQLite file at `path` (created if absent).

    Opens a connection per call, so one store serves a thread pool; SQLite serialises the writers.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            _use_wal(con)
            con.executescript(SCHEMA)
        with self._write() as con:  # one transaction: servers opening an older store at once add the column once
            columns = {row["name"] for row in con.execute("PRAGMA table_info(decisions)")}
            if "path" not in columns:  # a store made before decisions recorded their file: those rows keep ''
                con.execute("ALTER TABLE decisions ADD COLUMN path TEXT NOT NULL DEFAULT ''")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            con.execute("PRAGMA synchronous=FULL")
            con.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            con.row_factory = sqlite3.Row
            yield con
        finally:
            con.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE: the write lock is taken up front, so no deadlock on upgrade)."""
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def decide(
        self,
        sample_id: str,
        labeler: str,
        decision: str,
        label: str,
        note: str = "",
        blind: bool = False,
        request_id: str | None = None,
        path: str = "",
    ) -> Decision:
        """Store one decision and return it; with a `request_id` already stored, return that row unchanged.
        `path` is the file the labeler saw (the queue's): a later queue with another file for the sample makes
        the decision stale (`on_queued_files`).

        The caller checks the sample and the label against the queue (`ReviewQueue.check`); the store refuses
        only what would make the file itself wrong: an unknown verb or an empty labeler."""
        if decision not in DECISIONS:
            raise ValueError(f"decision {decision!r} is not one of {DECISIONS}")
        if not labeler.strip():
            raise ValueError("a decision needs the labeler's name")
        with self._write() as con:
            if request_id is not None:
                row = con.execute("SELECT * FROM decisions WHERE request_id = ?", (request_id,)).fetchone()
                if row is not None:
                    return Decision.from_row(row)
            cur = con.execute(
                "INSERT INTO decisions (sample_id, labeler, decision, label, note, blind, decided_at, request_id, path)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (sample_id, labeler.strip(), decision, label, note, int(blind), _now(), request_id, path),
            )
            row = con.execute("SELECT * FROM decisions WHERE seq = ?", (cur.lastrowid,)).fetchone()
        return Decision.from_row(row)

    def undo(self, labeler: str, queued: Mapping[str, str] | None = None) -> Decision | None:
        """Take back the labeler's latest decision that is not undone yet (their previous one on that sample, if
        any, becomes current again); None when there is nothing to undo. With `queued` (see `current`), only a
        decision that applies to the queue now: undo never takes back one the labeler cannot see."""
        with self._write() as con:
            rows = con.execute(
                "SELECT * FROM decisions WHERE labeler = ? AND undone_at IS NULL ORDER BY seq", (labeler.strip(),)
            ).fetchall()
            live = _frame([dict(r) for r in rows])
            if queued is not None:
                live = _applicable(live, queued)
            if live.empty:
                return None
            latest = live["seq"].max()
            row = next(r for r in rows if r["seq"] == latest)
            undone_at = _now()
            con.execute("UPDATE decisions SET undone_at = ? WHERE seq = ?", (undone_at, row["seq"]))
        return replace(Decision.from_row(row), undone_at=undone_at)

    def history(self) -> pd.DataFrame:
        """Every row ever stored, undone ones included, in the order they were made."""
        with self._connect() as con:
            return _frame([dict(r) for r in con.execute("SELECT * FROM decisions ORDER BY seq")])

    def current(self, queued: Mapping[str, str] | None = None) -> pd.DataFrame:
        """Each labeler's current decision per sample (their latest row not undone), ordered by sample and
        labeler. With `queued` (sample id -> the file queued for it now), only decisions that apply to that queue
        count (`on_queued_files`), before the latest is taken: a decision on a file the sample no longer has
        neither shows nor hides the labeler's decision on the file it has again; a decision that recorded no file
        counts only if no later one of that labeler on that sample recorded a file. Without `queued`: every
        latest decision, stale ones included (the store's own view; the app and exports always pass the queue)."""
        return current_decisions(self.history(), queued)


def current_decisions(history: pd.DataFrame, queued: Mapping[str, str] | None = None) -> pd.DataFrame:
    """`ReviewStore.current` of a history the caller has read already (`ReviewStore.history`)."""
    live = history[history["undone_at"].isna()]
    if queued is not None:
        live = _applicable(live, queued)
    latest = live.sort_values("seq").groupby(["sample_id", "labeler"], sort=False).tail(1)
    return latest.sort_values(["sample_id", "labeler"], kind="stable").reset_index(drop=True)


def _frame(rows: list[dict]) -> pd.DataFrame:
    """Stored rows as a frame with the Decision columns (also when there are none)."""
    columns = list(Decision.__dataclass_fields__)
    return pd.DataFrame(rows, columns=columns).astype({"blind": bool}) if rows else pd.DataFrame(columns=columns)


def _applicable(live: pd.DataFrame, queued: Mapping[str, str]) -> pd.DataFrame:
    """The live decisions that apply to the queue (see `current`)."""
    return on_queued_files(_superseded_unrecorded(live), queued)


def applies(sample_id: str, path: str | None, queued: Mapping[str, str]) -> bool:
    """Whether a decision on `sample_id` that recorded `path` applies to the queue (see `on_queued_files`)."""
    return sample_id in queued and (not path or path == queued[sample_id])


def _superseded_unrecorded(live: pd.DataFrame) -> pd.DataFrame:
    """`live` without the decisions that recorded no file but were followed by one of the same labeler on the
    same sample that did: an older store's decision must not come back when the newer one goes stale."""
    has_path = live["path"].fillna("") != ""
    last = live[has_path].groupby(["sample_id", "labeler"])["seq"].max()
    pairs = pd.MultiIndex.from_frame(live[["sample_id", "labeler"]])
    later = live["seq"].to_numpy() < last.reindex(pairs).fillna(-1).to_numpy()
    return live[~(~has_path.to_numpy() & later)]


def on_queued_files(decisions: pd.DataFrame, queued: Mapping[str, str]) -> pd.DataFrame:
    """The rows of `decisions` (sample_id, path) that apply to a queue (sample id -> file queued now): on a
    queued sample and on the file queued now. A decision recording another file is stale (the candidate was
    made again, with another seed or policy): the page offers the sample again and exports leave it out. A
    decision that records no file (made before decisions recorded it) applies to the queued one."""
    paths = decisions["path"].fillna("").astype(str) if "path" in decisions else pd.Series("", index=decisions.index)
    keep = np.array([applies(s, p, queued) for s, p in zip(decisions["sample_id"], paths, strict=True)], dtype=bool)
    return decisions[keep].reset_index(drop=True)
