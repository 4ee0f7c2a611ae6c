"""Label Studio interop: the labeling config (every label plus reject / unsure, XML-escaped), the queue as tasks
(ids 1..n, local-files URLs relative to the document root, the proposed label as a prediction), and an export
read back as decisions (accept / relabel / reject / unsure, skipped annotations, labeler names, request ids that
make a re-import a no-op in the store)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

from curation.config import dataset_config, load_params
from curation.layout import Layout
from curation.review.label_studio import labeling_config, read_annotations, tasks
from curation.review.queue import MediaRoots, ReviewError, ReviewQueue
from curation.review.store import ReviewStore
from curation.versions import QUEUE_COLUMNS
from tests.review_project import DATASET, LABELS, make_project

URL = "/data/local-files/?d="
EVIL_URL = "data/speech/candidates/files/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E_0.wav"


@pytest.fixture()
def queue(tmp_path, monkeypatch):
    monkeypatch.chdir(make_project(tmp_path))
    return ReviewQueue.load(dataset_config(load_params("params.yaml"), DATASET), Layout(DATASET))


def choices(config: str) -> list[str]:
    root = ET.fromstring(config)
    return [c.attrib["value"] for c in root.iter("Choice")]


# --- labeling config ---------------------------------------------------------------------------------------------


def test_the_config_offers_every_label_then_reject_and_unsure():
    root = ET.fromstring(labeling_config(["0", "1", "2"], "audio"))
    assert [c.attrib["value"] for c in root.iter("Choice")] == ["0", "1", "2", "(reject)", "(unsure)"]
    (group,) = root.iter("Choices")
    assert (group.attrib["name"], group.attrib["toName"], group.attrib["choice"]) == ("label", "audio", "single")
    (media,) = root.iter("Audio")
    assert media.attrib == {"name": "audio", "value": "$audio"}
    (image,) = ET.fromstring(labeling_config(["cat"], "image")).iter("Image")
    assert image.attrib == {"name": "image", "value": "$image"}


def test_the_config_escapes_labels_so_they_round_trip():
    labels = ['a"<b>&', "it's", "both ' and \"", "<Choice value='x'/>"]
    config = labeling_config(labels, "audio")
    assert "<b>" not in config and "<Choice value='x'/>" not in config
    assert choices(config) == [*labels, "(reject)", "(unsure)"]


@pytest.mark.parametrize("clash", ["(reject)", "(unsure)"])
def test_a_label_equal_to_a_reserved_choice_is_refused(clash):
    with pytest.raises(ReviewError, match=r"clash with the reject / unsure choices") as err:
        labeling_config(["0", clash], "audio")
    assert clash in str(err.value)


# --- tasks -------------------------------------------------------------------------------------------------------


def test_one_task_per_queue_item_in_order_with_ids_1_to_n(queue):
    got = tasks(queue)
    assert [t["id"] for t in got] == [1, 2, 3, 4, 5, 6]
    assert [t["data"]["sample_id"] for t in got] == ["aug/c0", "aug/c1", "aug/c2", "aug/c3", "aug/c4", "2/src_5.wav"]
    assert got[1]["data"] == {
        "audio": URL + "data/speech/candidates/files/cand_1.wav", "sample_id": "aug/c1", "proposed": "1",
        "reason": "ambiguous: clarity 0.41 ", "slice": "condition=car", "kind": "candidate",
        "path": queue.path_of("aug/c1"),
    }  # fmt: skip
    assert got[5]["data"] == {
        "audio": URL + "raw/2/src_5.wav", "sample_id": "2/src_5.wav", "proposed": "2",
        "reason": "labelled '2' but out-of-sample model gives '1'", "slice": "label=2", "kind": "label_issue",
        "path": queue.path_of("2/src_5.wav"),
    }  # fmt: skip
    assert got[0]["data"]["audio"] == URL + EVIL_URL  # quoted, so no markup or spaces reach the URL


def test_a_task_predicts_the_proposed_label(queue):
    for task, proposed in zip(tasks(queue), ["0", "1", "2", "0", "1", "2"], strict=True):
        assert task["predictions"] == [
            {
                "model_version": "curation-queue",
                "result": [
                    {"from_name": "label", "to_name": "audio", "type": "choices", "value": {"choices": [proposed]}}
                ],
            }
        ]


def test_urls_are_relative_to_the_document_root(queue, tmp_path):
    got = tasks(queue, document_root=tmp_path.parent)
    assert got[1]["data"]["audio"] == f"{URL}{tmp_path.name}/data/speech/candidates/files/cand_1.wav"
    assert got[5]["data"]["audio"] == f"{URL}{tmp_path.name}/raw/2/src_5.wav"
    assert tasks(queue, document_root=tmp_path) == tasks(queue, document_root=".")


def test_a_file_outside_the_document_root_is_refused_by_name(queue):
    with pytest.raises(ReviewError, match=r"outside the Label Studio document root") as err:
        tasks(queue, document_root="data")  # the label issue's file lies under raw/
    assert str(err.value).startswith("raw/2/src_5.wav: ")


def test_a_folder_whose_name_starts_with_two_dots_is_inside_the_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    item = {"id": "s1", "path": "data/..odd/x.wav", "label": "0", "kind": "candidate", "target_slice": "t"}
    row = dict.fromkeys(QUEUE_COLUMNS, "") | item
    q = ReviewQueue(pd.DataFrame([row]), ["0"], "audio", MediaRoots({"data": Path("data")}))
    assert tasks(q, document_root="data")[0]["data"]["audio"] == URL + "..odd/x.wav"


# --- read_annotations --------------------------------------------------------------------------------------------


def ann(aid: int, choice: str | None, who: object = 7, cancelled: bool = False) -> dict:
    """One annotation as a Label Studio JSON export has it."""
    result = [] if choice is None else [
        {"from_name": "label", "to_name": "audio", "type": "choices", "value": {"choices": [choice]}}
    ]  # fmt: skip
    return {"id": aid, "completed_by": who, "result": result, "was_cancelled": cancelled}


def task(tid: int, sample_id: str, *annotations: dict) -> dict:
    return {"id": tid, "data": {"sample_id": sample_id, "audio": "ignored"}, "annotations": list(annotations)}


def decision(sid, who, verb, label, rid, path="") -> dict:
    return {"sample_id": sid, "labeler": who, "decision": verb, "label": label, "note": "", "request_id": rid,
            "path": path}  # fmt: skip


def test_an_annotation_records_the_file_its_task_showed_so_a_remade_candidate_is_seen_stale(queue):
    shown = task(1, "aug/c0", ann(11, "2", who=3))
    shown["data"]["path"] = "data/speech/candidates/files/old.wav"
    older = task(2, "aug/c1", ann(21, "1", who=3))  # exported before tasks recorded their file
    got = read_annotations([shown, older], queue).decisions
    assert [d["path"] for d in got] == ["data/speech/candidates/files/old.wav", ""]


def test_choices_become_accept_relabel_reject_and_unsure(queue):
    export = [
        task(1, "aug/c0", ann(11, "0"), ann(12, "2")),
        task(2, "aug/c1", ann(21, "(reject)")),
        task(6, "2/src_5.wav", ann(61, "(unsure)"), ann(62, "1")),
    ]
    got = read_annotations(export, queue)
    assert got.skipped == []
    assert got.decisions == [
        decision("aug/c0", "label-studio:7", "accept", "0", "label-studio:1:11"),
        decision("aug/c0", "label-studio:7", "relabel", "2", "label-studio:1:12"),
        decision("aug/c1", "label-studio:7", "reject", "1", "label-studio:2:21"),
        decision("2/src_5.wav", "label-studio:7", "unsure", "2", "label-studio:6:61"),
        decision("2/src_5.wav", "label-studio:7", "relabel", "1", "label-studio:6:62"),
    ]


def test_cancelled_and_empty_annotations_are_skipped_with_the_reason(queue):
    other_control = ann(33, "1") | {"result": [{"from_name": "notes", "type": "textarea", "value": {"text": ["x"]}}]}
    export = [
        task(3, "aug/c2", ann(31, "1", cancelled=True), ann(32, None), other_control, ann(34, "2")),
        task(4, "aug/c3"),  # no annotation yet
    ]
    got = read_annotations(export, queue)
    assert got.skipped == [
        "task 3 annotation 31: cancelled (skipped) in Label Studio",
        "task 3 annotation 32: no choice made",
        "task 3 annotation 33: no choice made",
    ]
    assert got.decisions == [decision("aug/c2", "label-studio:7", "accept", "2", "label-studio:3:34")]


def test_labeler_names_come_from_the_annotator_id_or_email(queue):
    export = [
        task(1, "aug/c0", ann(1, "0", who=42), ann(2, "0", who={"id": 5, "email": "ann@example.org"}),
             ann(3, "0", who={"id": 9, "email": "", "username": "bob"}), ann(4, "0", who={"id": 13}),
             ann(5, "0", who=None)),
    ]  # fmt: skip
    got = read_annotations(export, queue)
    assert [d["labeler"] for d in got.decisions] == [
        "label-studio:42",
        "label-studio:ann@example.org",
        "label-studio:bob",
        "label-studio:13",
        "label-studio",
    ]
    assert [d["request_id"] for d in got.decisions] == [f"label-studio:1:{i}" for i in range(1, 6)]


def test_an_unknown_sample_or_a_label_outside_the_set_is_refused_listing_each_task(queue):
    export = [
        task(1, "aug/c0", ann(11, "0")),
        task(8, "aug/gone", ann(81, "1")),
        task(2, "aug/c1", ann(21, "9")),
    ]
    with pytest.raises(ReviewError) as err:
        read_annotations(export, queue)
    assert str(err.value) == (
        "cannot import the Label Studio export:\n"
        "  task 8 annotation 81: sample 'aug/gone' is not in the review queue\n"
        f"  task 2 annotation 21: label '9' is not in the label set ({', '.join(LABELS)})"
    )


def test_importing_the_same_export_twice_stores_each_decision_once(queue, tmp_path):
    export = [task(1, "aug/c0", ann(11, "2", who=3)), task(2, "aug/c1", ann(21, "(reject)", who=4))]
    store = ReviewStore(tmp_path / "store.sqlite")
    first = [store.decide(**d) for d in read_annotations(export, queue).decisions]
    again = [store.decide(**d) for d in read_annotations(export, queue).decisions]
    assert again == first
    hist = store.history()
    assert [
        tuple(r) for r in hist[["sample_id", "labeler", "decision", "label", "request_id"]].itertuples(index=False)
    ] == [
        ("aug/c0", "label-studio:3", "relabel", "2", "label-studio:1:11"),
        ("aug/c1", "label-studio:4", "reject", "1", "label-studio:2:21"),
    ]
