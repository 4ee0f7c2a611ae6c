"""The review store: what `decide` stores and returns, the SQLite file's WAL mode, refused writes, request-id
idempotency, undo (per labeler, the previous decision becoming current), `current` against `history`, and
durability across a reopen; a property test checks `current` against an in-Python model of the rules."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curation.review.store import Decision, ReviewStore

COLUMNS = ["seq", "sample_id", "labeler", "decision", "label", "note", "blind", "decided_at", "request_id", "undone_at",
           "path"]  # fmt: skip


@pytest.fixture()
def store(tmp_path):
    return ReviewStore(tmp_path / "reviews" / "store.sqlite")


def rows(frame, *columns):
    """The frame's rows as tuples of the given columns."""
    return [tuple(r) for r in frame[list(columns)].itertuples(index=False)]


def test_decide_returns_the_stored_row_with_the_labeler_and_the_time(store):
    before = datetime.now(UTC)
    got = store.decide("s1", " ann ", "relabel", "2", note="sounds like two", blind=True, request_id="r-1",
                       path="data/x.wav")  # fmt: skip
    after = datetime.now(UTC)
    assert got == Decision(
        seq=1, sample_id="s1", labeler="ann", decision="relabel", label="2", note="sounds like two", blind=True,
        decided_at=got.decided_at, request_id="r-1", undone_at=None, path="data/x.wav",
    )  # fmt: skip
    decided_at = datetime.fromisoformat(got.decided_at)
    assert decided_at.tzinfo is not None
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= decided_at <= after
    assert store.history().to_dict("records") == [got.to_dict()]


def test_the_file_is_in_wal_journal_mode(store):
    con = sqlite3.connect(store.path)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        con.close()


@pytest.mark.parametrize("verb", ["approve", "", "Accept"])
def test_an_unknown_verb_is_refused(store, verb):
    with pytest.raises(ValueError, match="is not one of"):
        store.decide("s1", "ann", verb, "1")
    assert store.history().empty


@pytest.mark.parametrize("labeler", ["", "   "])
def test_an_empty_labeler_is_refused(store, labeler):
    with pytest.raises(ValueError, match="labeler's name"):
        store.decide("s1", labeler, "accept", "1")
    assert store.history().empty


def test_the_same_request_id_twice_stores_one_row_and_returns_it(store):
    first = store.decide("s1", "ann", "accept", "1", request_id="req-7")
    again = store.decide("s1", "ann", "accept", "1", request_id="req-7")
    changed = store.decide("s2", "bob", "reject", "0", request_id="req-7")  # a retry returns the stored row as is
    assert again == first and changed == first
    assert len(store.history()) == 1
    other = store.decide("s1", "ann", "accept", "1", request_id="req-8")
    assert other.seq == 2 and len(store.history()) == 2


def test_undo_takes_back_the_latest_decision_and_the_previous_one_becomes_current(store):
    store.decide("s1", "ann", "accept", "1")
    store.decide("s2", "ann", "reject", "0")
    store.decide("s1", "ann", "relabel", "2")
    undone = store.undo("ann")
    assert (undone.seq, undone.sample_id, undone.decision, undone.label) == (3, "s1", "relabel", "2")
    assert undone.undone_at is not None
    assert rows(store.current(), "sample_id", "labeler", "decision", "label", "seq") == [
        ("s1", "ann", "accept", "1", 1),
        ("s2", "ann", "reject", "0", 2),
    ]
    again = store.undo("ann")
    assert (again.seq, again.sample_id) == (2, "s2")
    assert rows(store.current(), "sample_id", "seq") == [("s1", 1)]


def test_undo_with_nothing_to_undo_returns_none(store):
    assert store.undo("ann") is None
    store.decide("s1", "ann", "accept", "1")
    assert store.undo("ann").seq == 1
    assert store.undo("ann") is None
    assert len(store.history()) == 1


def test_undo_only_touches_the_given_labeler(store):
    store.decide("s1", "ann", "accept", "1")
    store.decide("s1", "bob", "reject", "1")
    assert store.undo("bob").labeler == "bob"
    assert store.undo("bob") is None
    assert rows(store.current(), "sample_id", "labeler", "decision") == [("s1", "ann", "accept")]
    assert rows(store.history(), "labeler", "decision") == [("ann", "accept"), ("bob", "reject")]
    assert store.history()["undone_at"].notna().tolist() == [False, True]


def test_current_is_the_latest_live_decision_per_sample_and_labeler(store):
    store.decide("s2", "bob", "accept", "0")  # 1
    store.decide("s1", "bob", "relabel", "2")  # 2
    store.decide("s1", "ann", "accept", "1")  # 3
    store.decide("s2", "bob", "reject", "0")  # 4: replaces 1
    store.decide("s1", "ann", "unsure", "1", note="noisy")  # 5: replaces 3
    cur = store.current()
    assert list(cur.columns) == COLUMNS
    assert rows(cur, "sample_id", "labeler", "decision", "label", "note", "seq") == [
        ("s1", "ann", "unsure", "1", "noisy", 5),
        ("s1", "bob", "relabel", "2", "", 2),
        ("s2", "bob", "reject", "0", "", 4),
    ]
    assert cur["undone_at"].isna().all()


def test_history_keeps_every_row_undone_ones_included(store):
    store.decide("s1", "ann", "accept", "1")
    store.decide("s1", "ann", "relabel", "2", blind=True)
    store.undo("ann")
    hist = store.history()
    assert list(hist.columns) == COLUMNS
    assert rows(hist, "seq", "sample_id", "labeler", "decision", "label", "blind") == [
        (1, "s1", "ann", "accept", "1", False),
        (2, "s1", "ann", "relabel", "2", True),
    ]
    assert hist["blind"].dtype == bool
    assert hist["undone_at"].notna().tolist() == [False, True]


def test_an_empty_store_has_empty_frames_with_the_columns(store):
    assert store.history().empty and list(store.history().columns) == COLUMNS
    assert store.current().empty and list(store.current().columns) == COLUMNS


def test_a_second_store_on_the_same_file_sees_the_rows(tmp_path):
    path = tmp_path / "store.sqlite"
    first = ReviewStore(path)
    a = first.decide("s1", "ann", "accept", "1", request_id="x")
    first.decide("s2", "ann", "reject", "0")
    first.undo("ann")
    del first
    reopened = ReviewStore(path)
    hist = reopened.history()
    assert rows(hist, "seq", "sample_id", "labeler", "decision", "label", "note", "blind") == [
        (1, "s1", "ann", "accept", "1", "", False),
        (2, "s2", "ann", "reject", "0", "", False),
    ]
    assert hist["request_id"][0] == "x" and hist["request_id"].isna().tolist() == [False, True]
    assert hist["undone_at"].notna().tolist() == [False, True]
    assert reopened.decide("s9", "bob", "accept", "0", request_id="x") == a  # the request id survived too
    assert reopened.undo("ann").seq == 1


def test_a_store_made_before_decisions_recorded_their_file_opens_with_an_empty_path(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as con:  # the schema before the path column
        con.execute(
            "CREATE TABLE decisions (seq INTEGER PRIMARY KEY AUTOINCREMENT, sample_id TEXT NOT NULL, labeler TEXT"
            " NOT NULL, decision TEXT NOT NULL, label TEXT NOT NULL, note TEXT NOT NULL DEFAULT '', blind INTEGER"
            " NOT NULL DEFAULT 0, decided_at TEXT NOT NULL, request_id TEXT UNIQUE, undone_at TEXT)"
        )
        con.execute("INSERT INTO decisions (sample_id, labeler, decision, label, decided_at) VALUES"
                    " ('s1', 'ann', 'accept', '1', '2026-01-01T00:00:00.000+00:00')")  # fmt: skip
    store = ReviewStore(path)
    assert rows(store.current(), "sample_id", "path") == [("s1", "")]
    assert store.decide("s2", "ann", "reject", "0", path="b.wav").path == "b.wav"


def test_servers_opening_an_older_store_at_once_add_the_path_column_once(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE decisions (seq INTEGER PRIMARY KEY AUTOINCREMENT, sample_id TEXT NOT NULL, labeler"
                    " TEXT NOT NULL, decision TEXT NOT NULL, label TEXT NOT NULL, note TEXT NOT NULL DEFAULT '',"
                    " blind INTEGER NOT NULL DEFAULT 0, decided_at TEXT NOT NULL, request_id TEXT UNIQUE,"
                    " undone_at TEXT)")  # fmt: skip
    start, errors = threading.Barrier(8), []

    def open_store() -> None:
        start.wait()
        try:
            ReviewStore(path)
        except sqlite3.Error as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    with sqlite3.connect(path) as con:
        assert [r[1] for r in con.execute("PRAGMA table_info(decisions)")].count("path") == 1


def test_a_decision_on_an_older_file_neither_shows_nor_hides_the_one_on_the_file_queued_again(store):
    """Decided on file A, remade as B and decided again, then the params went back: A's decision is current."""
    store.decide("s1", "ann", "accept", "1", path="a.wav")
    store.decide("s1", "ann", "reject", "1", path="b.wav")
    store.decide("s2", "ann", "unsure", "0")  # recorded no file: applies to whatever is queued
    assert rows(store.current({"s1": "a.wav", "s2": "x.wav"}), "sample_id", "decision") == [
        ("s1", "accept"),
        ("s2", "unsure"),
    ]
    assert rows(store.current({"s1": "b.wav"}), "sample_id", "decision") == [("s1", "reject")]
    assert rows(store.current({"s1": "c.wav"}), "sample_id") == []
    assert rows(store.current(), "sample_id", "decision") == [("s1", "reject"), ("s2", "unsure")]


def test_a_decision_that_recorded_no_file_does_not_come_back_when_a_later_one_goes_stale(store):
    store.decide("s1", "ann", "accept", "1")  # an older store's row: no file recorded
    store.decide("s1", "ann", "reject", "1", path="b.wav")
    assert store.current({"s1": "c.wav"}).empty  # remade again: to be decided again, not the old accept
    assert store.undo("ann", {"s1": "c.wav"}) is None
    assert rows(store.current({"s1": "b.wav"}), "decision") == [("reject",)]


def test_undo_on_a_queue_takes_back_only_a_decision_that_applies_to_it(store):
    store.decide("s1", "ann", "accept", "1", path="a.wav")
    store.decide("s1", "ann", "reject", "1", path="b.wav")  # the latest, but on a file no longer queued
    assert store.undo("ann", {"s1": "a.wav"}).path == "a.wav"
    assert store.undo("ann", {"s1": "a.wav"}) is None
    assert rows(store.current(), "decision", "path") == [("reject", "b.wav")]


SAMPLES, LABELERS = ["s1", "s2", "s3"], ["ann", "bob"]
DECIDE = st.tuples(
    st.just("decide"), st.sampled_from(SAMPLES), st.sampled_from(LABELERS),
    st.sampled_from(["accept", "relabel", "reject", "unsure"]), st.sampled_from(["0", "1", "2"]),
)  # fmt: skip
UNDO = st.tuples(st.just("undo"), st.sampled_from(LABELERS))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.one_of(DECIDE, UNDO), max_size=12))
def test_current_matches_a_model_of_latest_live_decision(tmp_path_factory, ops):
    store = ReviewStore(tmp_path_factory.mktemp("prop") / "store.sqlite")
    model: list[dict] = []  # every row in order, with an `undone` flag
    for op in ops:
        if op[0] == "decide":
            _, sid, who, verb, label = op
            got = store.decide(sid, who, verb, label)
            model.append({"seq": len(model) + 1, "sid": sid, "who": who, "verb": verb, "label": label, "undone": False})
            assert got.seq == len(model)
        else:
            live = [r for r in model if r["who"] == op[1] and not r["undone"]]
            got = store.undo(op[1])
            if live:
                live[-1]["undone"] = True
                assert got is not None and got.seq == live[-1]["seq"]
            else:
                assert got is None
    latest: dict[tuple[str, str], dict] = {}
    for r in model:
        if not r["undone"]:
            latest[(r["sid"], r["who"])] = r
    expected = [(k[0], k[1], r["verb"], r["label"], r["seq"]) for k, r in sorted(latest.items())]
    assert rows(store.current(), "sample_id", "labeler", "decision", "label", "seq") == expected
    assert store.history()["undone_at"].notna().tolist() == [r["undone"] for r in model]
