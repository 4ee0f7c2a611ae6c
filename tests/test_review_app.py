"""The review app over real HTTP (uvicorn on a loopback port): decisions, undo, filters, blind mode, and the
safety rules: path traversal is 404, the token is required when set, foreign Host headers and non-JSON posts
are refused, a decision for a sample not queued or a label not in the set is refused with the reason."""

from __future__ import annotations

import http.client
import json
import os
from urllib.parse import urlsplit

import pytest

from curation.config import dataset_config, load_params
from curation.layout import Layout
from curation.review.app import HEADERS, create_app
from curation.review.queue import ReviewError, ReviewQueue
from curation.review.store import ReviewStore
from tests.review_project import DATASET, EVIL, make_project, serving


def call(base: str, method: str, path: str, body: object = None, headers: dict | None = None):
    """(status, headers, parsed JSON or bytes); the path is sent exactly as given (no normalising)."""
    url = urlsplit(base)
    con = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    data = json.dumps(body).encode() if body is not None else None
    hdrs = {"Content-Type": "application/json"} if data is not None else {}
    con.request(method, path, body=data, headers=hdrs | (headers or {}))
    resp = con.getresponse()
    raw = resp.read()
    con.close()
    is_json = resp.getheader("content-type", "").startswith("application/json")
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(raw) if is_json else raw


@pytest.fixture()
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(make_project(tmp_path))
    cfg = dataset_config(load_params("params.yaml"), DATASET)
    lay = Layout(DATASET)
    return ReviewQueue.load(cfg, lay), ReviewStore(lay.review_store), cfg


def app_for(project, **kw):
    queue, store, cfg = project
    return create_app(queue, store, dataset=DATASET, media_cfg=cfg["media"], seed=3, **kw)


def test_a_decision_is_stored_with_who_and_then_undone(project):
    with serving(app_for(project)) as base:
        status, _, body = call(base, "POST", "/api/decisions",
                               {"labeler": "ann", "sample_id": "aug/c1", "decision": "relabel", "label": "2",
                                "note": EVIL})  # fmt: skip
        assert status == 200
        assert body["stored"] | {"decided_at": None, "seq": None} == {
            "seq": None, "sample_id": "aug/c1", "labeler": "ann", "decision": "relabel", "label": "2",
            "note": EVIL, "blind": False, "decided_at": None, "request_id": None, "undone_at": None,
            "path": project[0].path_of("aug/c1"),
        }  # fmt: skip
        _, _, items = call(base, "GET", "/api/items?labeler=ann")
        assert items["decided"] == [1] and items["decided_total"] == 1
        _, _, item = call(base, "GET", "/api/items/1?labeler=ann")
        assert item["mine"] == {"decision": "relabel", "label": "2", "note": EVIL}
        _, _, undone = call(base, "POST", "/api/undo", {"labeler": "ann"})
        assert undone["undone"]["sample_id"] == "aug/c1" and undone["undone"]["undone_at"] is not None
        _, _, items = call(base, "GET", "/api/items?labeler=ann")
        assert items["decided"] == []
    assert project[1].current().empty and len(project[1].history()) == 1


def test_a_decision_on_an_older_file_of_a_sample_is_offered_again(project):
    """The candidate was made again (another seed): its decision recorded the old file, so it is to be redone;
    a decision that records no file (an older store's) still counts."""
    queue, store, _ = project
    store.decide("aug/c1", "ann", "accept", queue.items[queue.position["aug/c1"]]["label"], path="files/old.wav")
    store.decide("aug/c2", "ann", "reject", queue.items[queue.position["aug/c2"]]["label"])
    with serving(app_for(project)) as base:
        _, _, items = call(base, "GET", "/api/items?labeler=ann")
        assert items["decided"] == [queue.position["aug/c2"]] and items["decided_total"] == 1
        _, _, item = call(base, "GET", f"/api/items/{queue.position['aug/c1']}?labeler=ann")
        assert item["mine"] is None
        status, _, body = call(base, "POST", "/api/decisions",
                               {"labeler": "ann", "sample_id": "aug/c1", "decision": "reject"})  # fmt: skip
        assert status == 200 and body["stored"]["path"] == queue.path_of("aug/c1") != "files/old.wav"
        _, _, items = call(base, "GET", "/api/items?labeler=ann")
        assert items["decided_total"] == 2


def test_relabel_to_the_proposed_label_is_stored_as_accept(project):
    with serving(app_for(project)) as base:
        _, _, body = call(
            base,
            "POST",
            "/api/decisions",
            {"labeler": "ann", "sample_id": "aug/c1", "decision": "relabel", "label": "1"},
        )
    assert (body["stored"]["decision"], body["stored"]["label"]) == ("accept", "1")


def test_a_sample_not_in_the_queue_is_refused_with_the_reason(project):
    with serving(app_for(project)) as base:
        status, _, body = call(
            base, "POST", "/api/decisions", {"labeler": "ann", "sample_id": "aug/nope", "decision": "accept"}
        )
    assert (status, body) == (422, {"error": "sample 'aug/nope' is not in the review queue"})
    assert project[1].history().empty


def test_a_label_not_in_the_label_set_is_refused_with_the_reason(project):
    with serving(app_for(project)) as base:
        status, _, body = call(
            base,
            "POST",
            "/api/decisions",
            {"labeler": "ann", "sample_id": "aug/c1", "decision": "relabel", "label": "7"},
        )
    assert (status, body) == (422, {"error": "label '7' is not in the label set (0, 1, 2)"})


def test_an_unknown_decision_verb_is_refused(project):
    with serving(app_for(project)) as base:
        status, _, body = call(
            base, "POST", "/api/decisions", {"labeler": "ann", "sample_id": "aug/c1", "decision": "maybe"}
        )
    assert status == 422 and body["error"] == "decision 'maybe' is not one of accept, relabel, reject, unsure"


def test_a_decision_without_a_labeler_is_refused(project):
    with serving(app_for(project)) as base:
        status, _, body = call(base, "POST", "/api/decisions", {"sample_id": "aug/c1", "decision": "accept"})
    assert (status, body) == (422, {"error": "a labeler name is required"})


def test_a_decision_not_sent_as_json_is_refused(project):
    with serving(app_for(project)) as base:
        status, _, body = call(base, "POST", "/api/decisions", headers={"Content-Type": "text/plain"})
    assert (status, body) == (422, {"error": "send the request as application/json"})


def test_a_retried_request_id_is_stored_once(project):
    with serving(app_for(project)) as base:
        sent = {"labeler": "ann", "sample_id": "aug/c2", "decision": "reject", "request_id": "r-1"}
        first = call(base, "POST", "/api/decisions", sent)[2]["stored"]
        again = call(base, "POST", "/api/decisions", sent)[2]["stored"]
    assert first == again and len(project[1].history()) == 1


def test_filters_select_by_slice_and_by_reason(project):
    with serving(app_for(project)) as base:
        car = call(base, "GET", "/api/items?labeler=ann&slice=condition%3Dcar")[2]["indices"]
        issues = call(base, "GET", "/api/items?labeler=ann&reason=label%20issue")[2]["indices"]
        config = call(base, "GET", "/api/config")[2]
    assert car == [0, 1, 2] and issues == [5]
    assert config["slices"] == ["condition=babble", "condition=car", "label=2"]
    assert config["reasons"] == ["ambiguous", "label issue"]


def test_blind_mode_hides_the_proposed_label_and_refuses_accept(project):
    with serving(app_for(project, blind=True)) as base:
        item = call(base, "GET", "/api/items/5?labeler=bo")[2]
        status, _, body = call(
            base, "POST", "/api/decisions", {"labeler": "bo", "sample_id": "aug/c0", "decision": "accept"}
        )
        stored = call(
            base,
            "POST",
            "/api/decisions",
            {"labeler": "bo", "sample_id": "aug/c0", "decision": "relabel", "label": "0"},
        )[2]["stored"]
    assert item["label"] is None and item["suggested"] is None
    assert status == 422 and body["error"].startswith("blind mode")
    assert (stored["decision"], stored["label"], stored["blind"]) == ("accept", "0", True)


@pytest.mark.parametrize(
    "path",
    [
        "/files/data/../params.yaml",
        "/files/data/%2e%2e/params.yaml",
        "/files/data/..%2fparams.yaml",
        "/files/source/../../etc/passwd",
        "/files/source/%2Fetc%2Fpasswd",
        "/files/data//etc/passwd",
        "/files/nope/0/src_0.wav",
        "/files/data/speech/split.parquet",  # inside the data root, but no queue item names it
        "/files/data/reviews/speech.sqlite",
    ],
)
def test_path_traversal_and_unlisted_files_are_404(project, path):
    with serving(app_for(project)) as base:
        status, _, body = call(base, "GET", path)
    assert status == 404 and b"root:" not in body and b"seed" not in body


def test_a_symlink_leading_outside_the_root_is_404(project, tmp_path):
    outside = tmp_path.parent / f"{tmp_path.name}_secret.wav"
    outside.write_bytes(b"secret")
    link = tmp_path / "raw" / "0" / "src_0.wav"
    link.unlink()
    os.symlink(outside, link)
    with serving(app_for(project)) as base:
        status, _, _ = call(base, "GET", "/files/source/0/src_0.wav")
    assert status == 404


def test_queued_files_and_their_spectrograms_are_served(project):
    queue = project[0]
    with serving(app_for(project)) as base:
        item = call(base, "GET", "/api/items/0?labeler=ann")[2]
        status, headers, wav = call(base, "GET", item["url"])
        s_status, s_headers, png = call(base, "GET", item["source"]["url"] + "?view=spectrogram")
    assert (
        item["file"] == f"{EVIL}_0.wav"
        and item["url"] == "/files/data/speech/candidates/files/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E_0.wav"
    )
    assert status == 200 and wav[:4] == b"RIFF" and headers["content-type"].startswith("audio/")
    assert s_status == 200 and png[:8] == b"\x89PNG\r\n\x1a\n" and s_headers["content-type"] == "image/png"
    assert len(queue.files) == 6 + 5  # 6 sources (5 made from, 1 flagged, book) + 5 candidate files


def test_security_headers_are_on_every_response(project):
    with serving(app_for(project)) as base:
        for path in ("/", "/api/config", "/files/data/nothing"):
            headers = call(base, "GET", path)[1]
            assert {k: headers.get(k.lower()) for k in HEADERS} == HEADERS, path


def test_a_foreign_host_header_is_refused(project):
    with serving(app_for(project)) as base:
        status, _, _ = call(base, "GET", "/api/config", headers={"Host": "attacker.example"})
    assert status == 400


def test_with_a_token_every_request_needs_it(project):
    with serving(app_for(project, token="s3cret")) as base:
        assert call(base, "GET", "/api/config")[0] == 401
        assert call(base, "GET", "/?token=wrong")[0] == 401
        status, headers, _ = call(base, "GET", "/?token=s3cret")
        cookie = headers["set-cookie"].split(";")[0]
        assert status == 303 and "HttpOnly" in headers["set-cookie"] and "SameSite=strict" in headers["set-cookie"]
        assert call(base, "GET", "/api/config", headers={"Cookie": cookie})[0] == 200
        assert call(base, "GET", "/api/config", headers={"Authorization": "Bearer s3cret"})[0] == 200
        assert call(base, "GET", "/api/config", headers={"Authorization": "Bearer s3cre"})[0] == 401


def test_the_page_itself_holds_no_queue_data(project):
    """Labels, notes and file names reach the page only as JSON, which the script sets as text."""
    with serving(app_for(project)) as base:
        status, _, page = call(base, "GET", "/")
    assert status == 200 and b"onerror" not in page and b'<script src="/static/app.js" defer></script>' in page


def test_a_label_named_like_the_reject_or_unsure_choice_is_refused(project):
    queue = project[0]
    with pytest.raises(ReviewError, match=r"label\(s\) \(reject\) are reserved for the reject / unsure choices"):
        ReviewQueue(queue.frame, ["0", "(reject)"], "audio", queue.roots)
