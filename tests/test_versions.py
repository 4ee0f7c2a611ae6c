"""Building a dataset version from the checklist's verdicts and the labelers' decisions."""

import pandas as pd
import pytest

from augment.rng import derive_seed
from curation.versions import (
    DECISION_COLUMNS,
    DecisionError,
    build_version,
    check_decisions,
    prior_guard,
    read_decisions,
    review_queue,
    within_budget,
)

LABELS = ["0", "1"]


def _parent():
    return pd.DataFrame(
        {
            "id": ["s1", "s2", "d1"],
            "path": ["a", "b", "c"],
            "label": ["0", "1", "0"],
            "split": ["train", "train", "dev"],
            "sha256": ["x", "y", "z"],
        }
    )


def _candidates():
    ids = ["c_acc", "c_rev1", "c_rev2", "c_rev3", "c_rej"]
    return pd.DataFrame(
        {
            "id": ids,
            "path": ids,
            "label": ["0", "1", "1", "0", "1"],
            "split": "train",
            "sha256": ids,
            "target_slice": "condition=dark",
            "source_id": "s1",
        }
    )


def _verdicts():
    return pd.DataFrame(
        {
            "id": ["c_acc", "c_rev1", "c_rev2", "c_rev3", "c_rej"],
            "verdict": ["accept", "review", "review", "review", "reject"],
        }
    )


def _decisions(rows):
    return pd.DataFrame(rows, columns=["id", "decision", "label", "labeler", "note"])


def test_accepted_and_reviewed_candidates_join_the_version():
    decisions = _decisions(
        [
            ["c_rev1", "accept", "1", "ann", ""],
            ["c_rev2", "relabel", "0", "ann", "looks 0"],
            ["c_rev3", "reject", "", "bob", ""],
        ]
    )
    version, changes = build_version(_parent(), _candidates(), _verdicts(), decisions, LABELS)
    added = version[version["id"].str.startswith("c_")].set_index("id")["label"].to_dict()
    assert added == {"c_acc": "0", "c_rev1": "1", "c_rev2": "0"}
    assert changes["added"] == 3 and changes["review"]["relabeled"] == 1 and changes["review"]["rejected"] == 1
    assert changes["train_per_label"] == {"0": 3, "1": 2}


def test_a_decision_recording_a_file_no_longer_queued_is_stale_and_listed():
    """Augmenting again makes other candidates: decisions on the old queue are left out, and said so."""
    decisions = pd.DataFrame(
        [["c_rev1", "relabel", "0", "ann", "", "c_rev1"],  # still queued with that file: applies
         ["c_old", "accept", "1", "ann", "", "old.wav"],  # id gone from the queue
         ["c_rev2", "accept", "1", "ann", "", "other.wav"]],  # id queued, but for another file
        columns=list(DECISION_COLUMNS),
    )  # fmt: skip
    version, changes = build_version(_parent(), _candidates(), _verdicts(), decisions, LABELS)
    assert changes["review"]["stale"] == [
        {"id": "c_old", "reason": "no longer in the review queue"},
        {"id": "c_rev2", "reason": "queued with another file (c_rev2, decided other.wav)"},
    ]
    assert (changes["review"]["decided"], changes["review"]["relabeled"]) == (1, 1)
    assert "c_rev2" not in set(version["id"]) and _labels_of(version)["c_rev1"] == "0"


def test_a_decision_without_a_path_must_name_a_queued_sample():
    decisions = _decisions([["c_old", "accept", "1", "ann", ""]])
    with pytest.raises(DecisionError, match="c_old: not in the review queue"):
        build_version(_parent(), _candidates(), _verdicts(), decisions, LABELS)


def test_decision_for_a_sample_not_in_the_queue_is_refused():
    with pytest.raises(DecisionError, match="c_acc: not in the review queue"):
        check_decisions(_decisions([["c_acc", "accept", "", "", ""]]), {"c_rev1"}, LABELS)


def test_relabel_outside_the_label_set_is_refused():
    with pytest.raises(DecisionError, match="relabel to '7', which is not in the label set"):
        check_decisions(_decisions([["c_rev1", "relabel", "7", "", ""]]), {"c_rev1"}, LABELS)


def test_unknown_decision_is_refused():
    with pytest.raises(DecisionError, match="decision 'maybe'"):
        check_decisions(_decisions([["c_rev1", "maybe", "", "", ""]]), {"c_rev1"}, LABELS)


def test_repeated_decision_is_refused():
    rows = [["c_rev1", "accept", "", "", ""], ["c_rev1", "reject", "", "", ""]]
    with pytest.raises(DecisionError, match="decided more than once"):
        check_decisions(_decisions(rows), {"c_rev1"}, LABELS)


def test_undecided_rows_are_not_decisions(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("id,decision,label,labeler,note\nc_rev1,,1,,\nc_rev2,accept,1,ann,\n")
    assert read_decisions(str(path))["id"].tolist() == ["c_rev2"]


def _issues():
    """Confident learning flags s1 and d1 (existing samples); s2 looks fine."""
    return pd.DataFrame(
        {
            "id": ["s1", "d1", "s2"],
            "path": ["a", "c", "b"],
            "label": ["0", "0", "1"],
            "suggested": ["1", "1", "1"],
            "label_quality": [0.05, 0.2, 0.9],
            "is_issue": [True, True, False],
            "reason": ["labelled '0' but ... '1'", "labelled '0' but ... '1'", "agrees"],
        }
    )


def _build_with_issue_decision(rows):
    return build_version(_parent(), _candidates(), _verdicts(), _decisions(rows), LABELS, label_issues=_issues())


def _labels_of(version):
    return version.set_index("id")["label"].to_dict()


def test_label_issue_accept_keeps_the_given_label():
    version, changes = _build_with_issue_decision([["s1", "accept", "0", "ann", ""]])
    assert _labels_of(version) == {"s1": "0", "s2": "1", "d1": "0", "c_acc": "0"}
    assert changes["label_issues"] == {
        "flagged": 2,
        "decided": 1,
        "relabeled": 0,
        "removed": 0,
        "relabels": {},
        "removals": [],
        "candidates": {"relabeled": 0, "dropped": 0},
    }


def test_label_issue_relabel_changes_the_label_and_is_recorded():
    version, changes = _build_with_issue_decision([["s1", "relabel", "1", "ann", "a one"]])
    # c_acc was made from s1: the augmented copy carries the corrected label too
    assert _labels_of(version) == {"s1": "1", "s2": "1", "d1": "0", "c_acc": "1"}
    assert changes["label_issues"]["relabeled"] == 1
    assert changes["label_issues"]["relabels"] == {"s1": {"from": "0", "to": "1"}}
    assert changes["label_issues"]["candidates"] == {"relabeled": 1, "dropped": 0}
    assert changes["train_per_label"] == {"1": 3}


def test_candidates_of_a_dropped_sample_are_dropped_too():
    version, changes = _build_with_issue_decision([["s1", "reject", "", "bob", "not a digit"]])
    assert sorted(version["id"]) == ["d1", "s2"]
    assert changes["label_issues"]["candidates"] == {"relabeled": 0, "dropped": 1}


def test_label_issue_reject_drops_the_sample_and_is_recorded():
    version, changes = _build_with_issue_decision([["d1", "reject", "", "bob", "not a digit"]])
    assert sorted(version["id"]) == ["c_acc", "s1", "s2"]
    assert changes["samples"] == 3 and changes["parent_samples"] == 3
    assert changes["label_issues"]["removed"] == 1 and changes["label_issues"]["removals"] == ["d1"]


def test_label_issue_unsure_keeps_the_sample_as_is():
    version, changes = _build_with_issue_decision([["s1", "unsure", "", "ann", ""]])
    assert _labels_of(version) == {"s1": "0", "s2": "1", "d1": "0", "c_acc": "0"}
    assert changes["label_issues"]["decided"] == 1
    assert changes["label_issues"]["relabeled"] == 0 and changes["label_issues"]["removed"] == 0


def test_undecided_label_issues_stay_as_they_are():
    version, changes = _build_with_issue_decision([])
    assert _labels_of(version) == {"s1": "0", "s2": "1", "d1": "0", "c_acc": "0"}
    assert changes["label_issues"]["flagged"] == 2 and changes["label_issues"]["decided"] == 0


def test_issue_and_candidate_decisions_apply_side_by_side():
    rows = [
        ["c_rev1", "relabel", "0", "ann", ""],
        ["s1", "relabel", "1", "ann", ""],
        ["d1", "reject", "", "ann", ""],
    ]
    version, changes = _build_with_issue_decision(rows)
    # c_acc follows its source's new label; c_rev1 keeps the label a labeler gave it
    assert _labels_of(version) == {"s1": "1", "s2": "1", "c_acc": "1", "c_rev1": "0"}
    assert changes["review"] == {
        "queued": 3,
        "decided": 1,
        "added": 1,
        "relabeled": 1,
        "rejected": 0,
        "unsure": 0,
        "stale": [],
    }
    assert changes["label_issues"]["decided"] == 2


def test_decision_on_an_unflagged_sample_is_refused():
    with pytest.raises(DecisionError, match="s2: not in the review queue"):
        _build_with_issue_decision([["s2", "relabel", "0", "ann", ""]])


def test_without_label_issues_existing_samples_cannot_be_decided():
    decisions = _decisions([["s1", "accept", "0", "ann", ""]])
    with pytest.raises(DecisionError, match="s1: not in the review queue"):
        build_version(_parent(), _candidates(), _verdicts(), decisions, LABELS)


def test_label_issue_outside_the_parent_is_refused():
    issues = _issues().assign(id=["s1", "gone", "s2"])
    with pytest.raises(ValueError, match="not in the parent version: gone"):
        build_version(_parent(), _candidates(), _verdicts(), _decisions([]), LABELS, label_issues=issues)


def test_label_issue_flags_must_be_boolean():
    issues = _issues().assign(is_issue=["True", "False", "False"])
    with pytest.raises(ValueError, match="is_issue must be boolean"):
        build_version(_parent(), _candidates(), _verdicts(), _decisions([]), LABELS, label_issues=issues)


def _scored_verdicts():
    return (
        _candidates()
        .merge(_verdicts(), on="id")
        .assign(realism=0.5, clarity=0.45, weakness=0.3, reason="ambiguous: clarity 0.45 between the thresholds")
    )


def test_review_queue_holds_review_candidates_then_flagged_issues():
    queue = review_queue(_scored_verdicts(), _issues())
    assert list(queue.columns) == [
        "id",
        "path",
        "label",
        "kind",
        "reason",
        "target_slice",
        "source_id",
        "realism",
        "clarity",
        "weakness",
        "suggested",
        "label_quality",
    ]
    assert queue["id"].tolist() == ["c_rev1", "c_rev2", "c_rev3", "s1", "d1"]
    assert queue["kind"].tolist() == ["candidate"] * 3 + ["label_issue"] * 2
    issue_rows = queue[queue["kind"] == "label_issue"]
    assert issue_rows["suggested"].tolist() == ["1", "1"] and issue_rows["label_quality"].tolist() == [0.05, 0.2]
    assert issue_rows["target_slice"].isna().all()
    assert queue[queue["kind"] == "candidate"]["suggested"].isna().all()


def test_review_queue_without_label_issues_is_the_candidates():
    queue = review_queue(_scored_verdicts())
    assert queue["id"].tolist() == ["c_rev1", "c_rev2", "c_rev3"]
    assert set(queue["kind"]) == {"candidate"}


def _skewed(n_added: int) -> tuple[pd.Series, pd.DataFrame]:
    parent_train = pd.Series(["0"] * 10 + ["1"] * 10)
    added = pd.DataFrame(
        {"id": [f"c{i:02d}" for i in range(n_added)], "label": "1", "weakness": [i / 10 for i in range(n_added)]}
    )
    return parent_train, added


def test_prior_guard_drops_just_enough_of_the_flooding_class():
    parent_train, added = _skewed(10)
    kept, record = prior_guard(parent_train, added, LABELS, 0.05)
    # (10 + a) / (20 + a) - 0.5 <= 0.05  <=>  a <= 2.2: two of the ten stay
    assert len(kept) == 2 and record["dropped"] == 8 and record["dropped_by_label"] == {"1": 8}
    assert record["shift_before"] == pytest.approx(20 / 30 - 0.5)
    assert record["shift_after"] == pytest.approx(12 / 22 - 0.5)
    assert kept["id"].tolist() == ["c08", "c09"]  # the weakest-for-the-model (highest weakness) are kept


def test_prior_guard_keeps_labeler_decisions_before_checklist_accepts():
    parent_train, added = _skewed(4)
    added["by_labeler"] = [True, False, False, False]
    kept, _ = prior_guard(parent_train, added, LABELS, 0.05)
    assert kept["id"].tolist() == ["c00", "c03"]


def test_prior_guard_leaves_a_balanced_addition_alone_and_refuses_a_bad_tolerance():
    parent_train = pd.Series(["0"] * 10 + ["1"] * 10)
    added = pd.DataFrame({"id": ["a", "b"], "label": ["0", "1"]})
    kept, record = prior_guard(parent_train, added, LABELS, 0.0)
    assert len(kept) == 2 and record["dropped"] == 0 and record["shift_after"] == 0.0
    with pytest.raises(ValueError, match="prior_tolerance"):
        prior_guard(parent_train, added, LABELS, 1.5)


def test_build_reports_the_prior_guard_on_the_card():
    _, card = build_version(_parent(), _candidates(), _verdicts(), _decisions([]), LABELS, prior_tolerance=1.0)
    assert card["prior_guard"]["dropped"] == 0 and card["prior_guard"]["tolerance"] == 1.0
    _, off = build_version(_parent(), _candidates(), _verdicts(), _decisions([]), LABELS)
    assert off["prior_guard"] is None


def test_budget_pays_for_the_hardest_accepted_candidates_of_each_slice():
    judged = pd.DataFrame(
        {
            "id": ["a1", "a2", "a3", "a4", "b1", "b2", "c1"],
            "target_slice": ["s=a", "s=a", "s=a", "s=a", "s=b", "s=b", "s=c"],
            "verdict": ["accept", "accept", "review", "accept", "accept", "easy", "accept"],
            "weakness": [0.2, 0.9, 0.99, 0.9, 0.5, 0.001, 0.7],
        }
    )
    paid = within_budget(judged, {"s=a": 2, "s=b": 5})
    assert judged.loc[paid, "id"].tolist() == ["a2", "a4", "b1"]


def test_budget_picked_at_random_draws_from_the_seed_and_the_ids_not_the_row_order():
    judged = pd.DataFrame(
        {
            "id": [f"a{k}" for k in range(8)] + ["b1"],
            "target_slice": ["s=a"] * 8 + ["s=b"],
            "verdict": ["accept"] * 7 + ["reject", "accept"],
            "weakness": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.99, 0.5],
        }
    )
    paid = judged.loc[within_budget(judged, {"s=a": 3, "s=b": 1}, "random", seed=5), "id"]
    keys = {i: derive_seed(5, "build pick", i) for i in judged["id"][:7]}
    assert sorted(paid) == sorted([*sorted(keys, key=keys.get)[:3], "b1"])
    shuffled = judged.sample(frac=1.0, random_state=1)
    assert sorted(shuffled.loc[within_budget(shuffled, {"s=a": 3, "s=b": 1}, "random", seed=5), "id"]) == sorted(paid)
    other = judged.loc[within_budget(judged, {"s=a": 3, "s=b": 1}, "random", seed=6), "id"]
    assert sorted(other) != sorted(paid)  # another seed, another draw (fixed seeds: checked once)


def test_an_unknown_pick_is_refused():
    judged = pd.DataFrame({"id": ["a1"], "target_slice": ["s=a"], "verdict": ["accept"], "weakness": [0.9]})
    with pytest.raises(ValueError, match=r"build.pick must be one of \('hardest', 'random'\), got 'easiest'"):
        within_budget(judged, {"s=a": 1}, "easiest")


def test_budget_with_nothing_accepted_pays_for_nothing():
    judged = pd.DataFrame({"id": ["a1"], "target_slice": ["s=a"], "verdict": ["review"], "weakness": [0.9]})
    assert within_budget(judged, {"s=a": 3}).tolist() == [False]
    assert within_budget(judged.iloc[:0], {"s=a": 3}).tolist() == []


def test_budget_needs_the_checklist_columns():
    with pytest.raises(ValueError, match="weakness"):
        within_budget(pd.DataFrame({"id": [], "target_slice": [], "verdict": []}), {})


def test_build_adds_only_the_accepted_candidates_the_budget_pays_for():
    cands = _candidates().assign(id=["a1", "a2", "a3", "r1", "x1"], path=["a1", "a2", "a3", "r1", "x1"])
    judged = cands[["id", "target_slice"]].assign(
        verdict=["accept", "accept", "accept", "review", "reject"], weakness=[0.3, 0.8, 0.5, 0.9, 0.9]
    )
    decisions = _decisions([["r1", "accept", "1", "ann", ""]])
    version, changes = build_version(_parent(), cands, judged, decisions, LABELS, allocation={"condition=dark": 2})
    assert sorted(version["id"][~version["id"].isin(_parent()["id"])]) == ["a2", "a3", "r1"]
    assert changes["accepted_by_checklist"] == 2 and changes["accepted_over_budget"] == 1
