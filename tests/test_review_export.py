"""From the store to the files DVC tracks: the consensus of the labelers per sample (majority of the sure votes,
a tie or no sure vote gives unsure), the merge with a decisions file's existing rows, the annotations file, and
the agreement report per slice (pairs of sure outcomes, blind accuracy against the proposed label)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from curation.review.agreement import AGREEMENT_COLUMNS, agreement_table
from curation.review.export import ANNOTATION_COLUMNS, annotations, consensus, merge_decisions
from curation.review.queue import queue_frame
from curation.review.store import Decision, on_queued_files
from curation.versions import DECISION_COLUMNS, QUEUE_COLUMNS


def current(*decisions: tuple) -> pd.DataFrame:
    """Current decisions as `ReviewStore.current` gives them, from (sample, labeler, decision, label[, note[,
    blind]]) tuples."""
    rows = []
    for seq, d in enumerate(decisions, start=1):
        sid, who, verb, label, note, blind = (*d, *("", False)[len(d) - 4 :])
        rows.append({"seq": seq, "sample_id": sid, "labeler": who, "decision": verb, "label": label, "note": note,
                     "blind": blind, "decided_at": f"2024-01-01T00:00:{seq:02d}.000+00:00", "request_id": None,
                     "undone_at": None, "path": ""})  # fmt: skip
    return pd.DataFrame(rows, columns=list(Decision.__dataclass_fields__))


def queue(*items: tuple[str, str, str]) -> pd.DataFrame:
    """A review queue frame (`ReviewQueue.frame`) of candidates from (id, proposed label, target slice)."""
    raw = pd.DataFrame(
        [
            {
                "id": sid,
                "path": f"data/{sid}.wav",
                "label": label,
                "kind": "candidate",
                "reason": "ambiguous: x",
                "target_slice": slice_,
                "source_id": "",
                "realism": 0.5,
                "clarity": 0.4,
                "weakness": 0.9,
                "suggested": "",
                "label_quality": "",
            }
            for sid, label, slice_ in items
        ],
        columns=list(QUEUE_COLUMNS),
    )
    return queue_frame(raw)


def records(frame: pd.DataFrame) -> list[dict]:
    return frame.to_dict("records")


def row(sid, decision, label, labeler, note="") -> dict:
    return {"id": sid, "decision": decision, "label": label, "labeler": labeler, "note": note,
            "path": f"data/{sid}.wav"}  # fmt: skip


Q1 = queue(("q1", "1", "s"))


# --- consensus ---------------------------------------------------------------------------------------------------


def test_only_decisions_on_the_files_queued_now_apply():
    q = queue(("s1", "1", "condition=car"), ("s2", "1", "condition=car"), ("s3", "0", "condition=car"))
    cur = current(("s1", "ann", "accept", "1"), ("s2", "ann", "accept", "1"), ("s3", "ann", "reject", "0"),
                  ("gone", "ann", "accept", "1"))  # fmt: skip
    cur["path"] = ["data/s1.wav", "data/old.wav", "", "data/gone.wav"]  # s2 was made again; s3 recorded no file
    queued = dict(zip(q["id"], q["path"], strict=True))
    assert on_queued_files(cur, queued)["sample_id"].tolist() == ["s1", "s3"]
    older = cur.drop(columns="path")  # an annotations file written before decisions recorded their file
    assert on_queued_files(older, queued)["sample_id"].tolist() == ["s1", "s2", "s3"]
    assert on_queued_files(cur.iloc[:0], queued).empty


def test_unanimous_accept_is_accept():
    got = consensus(current(("q1", "ann", "accept", "1"), ("q1", "bob", "accept", "1")), Q1)
    assert list(got.columns) == list(DECISION_COLUMNS)
    assert records(got) == [row("q1", "accept", "1", "ann;bob")]


def test_two_of_three_relabelling_to_one_label_is_a_relabel_to_it():
    cur = current(("q1", "ann", "relabel", "2"), ("q1", "bob", "accept", "1"), ("q1", "cat", "relabel", "2"))
    assert records(consensus(cur, Q1)) == [row("q1", "relabel", "2", "ann;bob;cat")]


def test_two_of_three_rejecting_is_a_reject_with_the_proposed_label():
    cur = current(("q1", "ann", "reject", "1"), ("q1", "bob", "relabel", "0"), ("q1", "cat", "reject", "1"))
    assert records(consensus(cur, Q1)) == [row("q1", "reject", "1", "ann;bob;cat")]


def test_a_tie_is_unsure_and_says_the_labelers_disagree():
    cur = current(("q1", "ann", "accept", "1"), ("q1", "bob", "relabel", "2"))
    assert records(consensus(cur, Q1)) == [row("q1", "unsure", "1", "ann;bob", "labelers disagree (1 x1, 2 x1)")]


def test_a_tie_keeps_the_labelers_notes_after_the_disagreement():
    cur = current(("q1", "ann", "reject", "1", "clipped"), ("q1", "bob", "relabel", "2", "clear two"))
    assert records(consensus(cur, Q1)) == [
        row("q1", "unsure", "1", "ann;bob", "labelers disagree ((reject) x1, 2 x1); ann: clipped; bob: clear two")
    ]


def test_all_unsure_is_unsure_without_a_disagreement_note():
    cur = current(("q1", "ann", "unsure", "1"), ("q1", "bob", "unsure", "1", "too noisy"))
    assert records(consensus(cur, Q1)) == [row("q1", "unsure", "1", "ann;bob", "bob: too noisy")]


def test_unsure_votes_do_not_count_toward_the_majority():
    q = queue(("q1", "1", "s"), ("q2", "1", "s"))
    cur = current(
        ("q1", "ann", "relabel", "7"), ("q1", "bob", "unsure", "1"),
        ("q2", "ann", "reject", "1"), ("q2", "bob", "unsure", "1"), ("q2", "cat", "unsure", "1"),
    )  # fmt: skip
    assert records(consensus(cur, q)) == [
        row("q1", "relabel", "7", "ann;bob"),
        row("q2", "reject", "1", "ann;bob;cat"),
    ]


def test_one_sure_vote_against_one_other_with_an_unsure_is_still_a_tie():
    cur = current(("q1", "ann", "relabel", "7"), ("q1", "bob", "unsure", "1"), ("q1", "cat", "accept", "1"))
    assert records(consensus(cur, Q1)) == [row("q1", "unsure", "1", "ann;bob;cat", "labelers disagree (7 x1, 1 x1)")]


def test_the_labeler_column_joins_the_names_sorted():
    cur = current(("q1", "cat", "accept", "1"), ("q1", "ann", "accept", "1"), ("q1", "bob", "accept", "1"))
    assert consensus(cur, Q1)["labeler"].tolist() == ["ann;bob;cat"]


def test_notes_are_joined_as_name_colon_note_skipping_empty_ones():
    cur = current(
        ("q1", "cat", "accept", "1", "fine"), ("q1", "ann", "accept", "1", "a <b> & c"), ("q1", "bob", "accept", "1"),
    )  # fmt: skip
    assert consensus(cur, Q1)["note"].tolist() == ["ann: a <b> & c; cat: fine"]


def test_rows_come_in_queue_order():
    q = queue(("z9", "0", "s"), ("a1", "1", "s"), ("m5", "2", "s"))
    cur = current(("a1", "ann", "accept", "1"), ("m5", "ann", "reject", "2"), ("z9", "ann", "relabel", "1"))
    assert records(consensus(cur, q)) == [
        row("z9", "relabel", "1", "ann"),
        row("a1", "accept", "1", "ann"),
        row("m5", "reject", "2", "ann"),
    ]


def test_decisions_on_samples_not_in_the_queue_are_left_out():
    cur = current(("gone", "ann", "accept", "1"), ("q1", "ann", "accept", "1"), ("gone", "bob", "reject", "1"))
    assert records(consensus(cur, Q1)) == [row("q1", "accept", "1", "ann")]
    assert consensus(current(("gone", "ann", "accept", "1")), Q1).empty


# --- merge_decisions ---------------------------------------------------------------------------------------------


EXISTING = pd.DataFrame(
    [
        row("x_b", "reject", "0", "sheet"),
        row("q3", "accept", "2", "sheet", "from the spreadsheet"),
        row("q1", "unsure", "1", "sheet"),
        row("x_a", "relabel", "1", "sheet"),
    ],
    columns=list(DECISION_COLUMNS),
)
NEW = pd.DataFrame([row("q2", "accept", "0", "ann"), row("q1", "relabel", "2", "ann;bob")])


def test_merge_keeps_existing_rows_for_samples_not_decided_in_the_store():
    got = merge_decisions(EXISTING, NEW.iloc[:0], ["q1", "q2", "q3"])
    assert records(got) == [
        row("q1", "unsure", "1", "sheet"),
        row("q3", "accept", "2", "sheet", "from the spreadsheet"),
        row("x_b", "reject", "0", "sheet"),
        row("x_a", "relabel", "1", "sheet"),
    ]


def test_merge_replaces_existing_rows_of_the_same_id_with_the_stores():
    got = merge_decisions(EXISTING, NEW, ["q1", "q2", "q3"])
    assert got["id"].tolist().count("q1") == 1
    assert records(got[got["id"] == "q1"]) == [row("q1", "relabel", "2", "ann;bob")]


def test_merge_orders_by_queue_then_unqueued_ids_in_their_old_order():
    got = merge_decisions(EXISTING, NEW, ["q1", "q2", "q3"])
    assert list(got.columns) == list(DECISION_COLUMNS)
    assert records(got) == [
        row("q1", "relabel", "2", "ann;bob"),
        row("q2", "accept", "0", "ann"),
        row("q3", "accept", "2", "sheet", "from the spreadsheet"),
        row("x_b", "reject", "0", "sheet"),
        row("x_a", "relabel", "1", "sheet"),
    ]


# --- annotations -------------------------------------------------------------------------------------------------


def test_annotations_are_in_queue_order_then_by_labeler_with_blind_as_bool():
    cur = current(
        ("q1", "bob", "accept", "1"), ("q1", "ann", "relabel", "2", "hm", True),
        ("q2", "cat", "reject", "0", "", True), ("q2", "ann", "unsure", "0"),
    )  # fmt: skip
    cur["blind"] = cur["blind"].astype(int)  # as a CSV or SQLite would give it
    cur["path"] = ["data/q1.wav", "data/q1.wav", "data/q2.wav", ""]  # the file decided on, if recorded
    got = annotations(cur, ["q2", "q1"])
    assert list(got.columns) == list(ANNOTATION_COLUMNS)
    assert got["blind"].dtype == bool
    assert [tuple(r) for r in got.drop(columns="decided_at").itertuples(index=False)] == [
        ("q2", "ann", "unsure", "0", "", False, ""),
        ("q2", "cat", "reject", "0", "", True, "data/q2.wav"),
        ("q1", "ann", "relabel", "2", "hm", True, "data/q1.wav"),
        ("q1", "bob", "accept", "1", "", False, "data/q1.wav"),
    ]
    assert got["decided_at"].tolist() == [cur["decided_at"][i] for i in (3, 2, 1, 0)]


# --- agreement ---------------------------------------------------------------------------------------------------


def table_rows(table: pd.DataFrame) -> dict[str, dict]:
    return {r["slice"]: r for r in table.to_dict("records")}


def test_agreement_per_slice_and_all_counts_sure_pairs_and_blind_accuracy():
    q = queue(("c1", "0", "car"), ("c2", "1", "car"), ("c3", "2", "babble"), ("c4", "0", "babble"))
    cur = current(
        ("c1", "ann", "accept", "0"), ("c1", "bob", "accept", "0"), ("c1", "cat", "relabel", "1", "", True),
        ("c2", "ann", "reject", "1"), ("c2", "bob", "reject", "1"), ("c2", "cat", "reject", "1"),
        ("c3", "ann", "relabel", "1", "", True), ("c3", "bob", "unsure", "2", "", True),
        ("c3", "cat", "relabel", "1", "", True),
        ("c4", "ann", "accept", "0", "", True), ("c4", "bob", "relabel", "2"), ("c4", "cat", "unsure", "0"),
    )  # fmt: skip
    # outcomes (unsure is none):   c1: 0 0 1      c2: reject x3      c3: 1 - 1      c4: 0 2 -
    # agreeing pairs / pairs:      c1: 1/3        c2: 3/3            c3: 1/1        c4: 0/1
    # car = c1+c2: 4/6; babble = c3+c4: 1/2 (c3 would have 3 pairs if unsure counted); all: 5/8
    # blind sure decisions vs proposed: c1 cat 1!=0; c3 ann 1!=2, cat 1!=2 (bob's blind unsure is no outcome);
    # c4 ann 0==0 -> car 0/1, babble 1/3, all 1/4
    table = agreement_table(cur, q, seed=0)
    assert list(table.columns) == list(AGREEMENT_COLUMNS)
    assert table["slice"].tolist() == ["babble", "car", "all"]
    got = table_rows(table)
    expected = {
        "babble": (2, 3, 2, 1 / 2, 3, 1 / 3),
        "car": (2, 3, 6, 4 / 6, 1, 0.0),
        "all": (4, 3, 8, 5 / 8, 4, 1 / 4),
    }
    for name, (samples, labelers, pairs, agreement, blind_n, blind_acc) in expected.items():
        r = got[name]
        assert (r["samples"], r["labelers"], r["pairs"], r["blind_decisions"]) == (samples, labelers, pairs, blind_n)
        assert r["agreement"] == pytest.approx(agreement)
        assert r["blind_accuracy"] == pytest.approx(blind_acc)
        for stat in ("agreement", "blind_accuracy"):
            assert 0.0 <= r[f"{stat}_low"] <= r[stat] <= r[f"{stat}_high"] <= 1.0
    assert agreement_table(cur, q, seed=0).equals(table)  # deterministic for a seed


def test_a_slice_without_pairs_has_no_agreement():
    q = queue(("c1", "0", "car"), ("c2", "1", "babble"), ("c3", "1", "quiet"))  # nobody decided c3
    cur = current(
        ("c1", "ann", "accept", "0"), ("c1", "bob", "relabel", "1"),
        ("c2", "ann", "relabel", "2", "", True), ("c2", "bob", "unsure", "1"),
    )  # fmt: skip
    got = table_rows(agreement_table(cur, q, seed=0))
    babble, quiet = got["babble"], got["quiet"]
    assert (babble["samples"], babble["labelers"], babble["pairs"], babble["blind_decisions"]) == (1, 2, 0, 1)
    assert babble["blind_accuracy"] == 0.0
    assert (quiet["samples"], quiet["labelers"], quiet["pairs"], quiet["blind_decisions"]) == (0, 0, 0, 0)
    # another slice has pairs, so the column is float and "no agreement" is NaN
    for r, stat in [(babble, "agreement"), (quiet, "agreement"), (quiet, "blind_accuracy")]:
        assert all(isinstance(r[c], float) and math.isnan(r[c]) for c in (stat, f"{stat}_low", f"{stat}_high"))
    assert got["car"]["agreement"] == 0.0 and got["all"]["pairs"] == 1


def test_no_pairs_anywhere_gives_missing_agreement_in_every_row():
    q = queue(("c1", "0", "car"))
    table = agreement_table(current(("c1", "ann", "accept", "0")), q, seed=0)
    assert table["slice"].tolist() == ["car", "all"]
    assert table["pairs"].tolist() == [0, 0]
    assert table[["agreement", "agreement_low", "agreement_high"]].isna().all().all()
    assert table[["blind_accuracy", "blind_accuracy_low", "blind_accuracy_high"]].isna().all().all()


# --- the CLI: export and the agreement stage on a queue that changed ---------------------------------------------


def test_export_and_agreement_leave_out_decisions_on_files_no_longer_queued(tmp_path, monkeypatch, capsys):
    """Two labelers decided aug/c1 on the file queued then; the candidate was remade (another file), so their
    decisions are left out of both files and of the agreement, while aug/c2's count."""
    from curation.cli import main
    from curation.layout import Layout
    from curation.review.store import ReviewStore
    from tests.review_project import DATASET, make_project

    monkeypatch.chdir(make_project(tmp_path))
    lay = Layout(DATASET)
    queue = pd.read_csv(lay.checklist_dir / "review_queue.csv", dtype=str, keep_default_na=False)
    path = dict(zip(queue["id"], queue["path"], strict=True))
    label = dict(zip(queue["id"], queue["label"], strict=True))
    store = ReviewStore(lay.review_store)
    for who in ("ann", "bo"):
        store.decide("aug/c1", who, "reject", label["aug/c1"], path="data/speech/candidates/files/old.wav")
        store.decide("aug/c2", who, "accept", label["aug/c2"], path=path["aug/c2"])
    assert main(["review", "export", DATASET]) == 0
    assert "2 decision(s) on samples or files no longer queued left out" in capsys.readouterr().out
    decisions = pd.read_csv(lay.decisions, dtype=str, keep_default_na=False)
    assert decisions[["id", "decision", "path"]].values.tolist() == [["aug/c2", "accept", path["aug/c2"]]]
    notes = pd.read_csv(lay.annotations, dtype=str, keep_default_na=False)
    assert notes[["id", "labeler", "path"]].values.tolist() == [["aug/c2", "ann", path["aug/c2"]],
                                                                ["aug/c2", "bo", path["aug/c2"]]]  # fmt: skip
    stale = notes.assign(id="aug/c1", decision="reject", path="data/speech/candidates/files/old.wav")  # a pair
    pd.concat([notes, stale]).to_csv(lay.annotations, index=False)  # an annotations file older than the queue
    assert main(["review", "agreement", DATASET]) == 0
    assert pd.read_json(lay.metrics / "review.json").loc["pairs", "all"] == 1
