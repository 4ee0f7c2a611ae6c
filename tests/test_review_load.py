"""Load test of the review server: 4 concurrent clients send 1,000 decisions while the server process is killed
(SIGKILL) and started again once; every decision the server acknowledged is in the store, each once.

Clients retry a request that got no answer with the same request id, as the page does not (a labeler would
press the key again) but a careful client should; the store's unique request ids make the retry safe. Traffic
goes to 127.0.0.1 only, and every loop is bounded in count and time."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time

from curation.layout import Layout
from curation.review.store import ReviewStore
from tests.review_project import DATASET, free_port, make_project

CLIENTS, PER_CLIENT = 4, 250
KILL_AFTER = 300  # acknowledged decisions before the server is killed
DEADLINE_S = 180.0
VERBS = ("accept", "reject", "unsure", "relabel")


def _post(port: int, body: dict) -> int:
    con = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        con.request("POST", "/api/decisions", body=json.dumps(body), headers={"Content-Type": "application/json"})
        resp = con.getresponse()
        resp.read()
        return resp.status
    finally:
        con.close()


def _ready(port: int, proc: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            con = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            con.request("GET", "/api/config")
            if con.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
        finally:
            con.close()
    raise RuntimeError("server did not come up in time")


def test_every_acknowledged_decision_survives_a_kill_and_restart(tmp_path):
    make_project(tmp_path)
    port = free_port()
    cmd = [sys.executable, "-m", "curation.cli", "review", "serve", DATASET, "--port", str(port)]

    def start() -> subprocess.Popen:
        proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _ready(port, proc, time.monotonic() + 60)
        return proc

    samples = ["aug/c0", "aug/c1", "aug/c2", "aug/c3", "aug/c4", "2/src_5.wav"]
    acked: list[str] = []
    retries = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + DEADLINE_S

    def client(k: int) -> None:
        for i in range(PER_CLIENT):
            verb = VERBS[i % len(VERBS)]
            body = {"labeler": f"client{k}", "sample_id": samples[(i + k) % len(samples)], "decision": verb,
                    "label": "2" if verb == "relabel" else None, "note": f"#{i}", "request_id": f"{k}-{i}"}  # fmt: skip
            while time.monotonic() < deadline:
                try:
                    status = _post(port, body)
                except (OSError, http.client.HTTPException):  # refused, reset, timed out or cut off mid-answer
                    status = None  # while the server is down: same request again
                if status == 200:
                    with lock:
                        acked.append(body["request_id"])
                    break
                with lock:
                    retries[0] += 1
                time.sleep(0.05)

    proc = start()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    try:
        while len(acked) < KILL_AFTER and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.kill()  # SIGKILL: no shutdown handler runs
        proc.wait(timeout=10)
        killed_at = len(acked)
        proc = start()
        for t in threads:
            t.join(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    stored = ReviewStore(tmp_path / Layout(DATASET).review_store).history()
    assert len(acked) == CLIENTS * PER_CLIENT, f"only {len(acked)} acknowledged before the deadline"
    assert KILL_AFTER <= killed_at < CLIENTS * PER_CLIENT and retries[0] > 0
    assert set(acked) <= set(stored["request_id"])
    assert len(stored) == CLIENTS * PER_CLIENT and stored["request_id"].is_unique
