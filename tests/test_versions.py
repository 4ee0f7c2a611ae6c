"""Building a dataset version from the checklist's verdicts and the labelers' decisions."""

import pandas as pd
import pytest

from curation.versions import DecisionError, build_version, check_decisions, read_decisions

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
