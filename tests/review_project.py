"""A tiny project with a review queue on disk, and the review app running on a loopback port, for the review
tests (unit, browser and load). Every name a labeler sees has HTML in it, so escaping is always under test."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import uvicorn
import yaml

from curation import manifest
from curation.layout import Layout
from curation.media import save_audio

DATASET = "speech"
LABELS = ["0", "1", "2"]
MEDIA = {"sample_rate": 8000, "seconds": 0.25, "n_fft": 256, "hop": 80, "n_mels": 20}
EVIL = "<img src=x onerror=alert(1)>"  # in a file name, a reason and a note: must show as text
N_CANDIDATES = 5


def _tone(freq: float) -> np.ndarray:
    t = np.arange(2000, dtype=np.float32) / MEDIA["sample_rate"]
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def make_project(root: Path) -> Path:
    """params.yaml, sources under raw/, a split, label issues and a review queue of N_CANDIDATES candidates
    (target slices condition=car and condition=babble) and one label issue; returns `root`."""
    lay = Layout(DATASET, data_root=root / "data")
    rows = []
    for i in range(6):
        label = LABELS[i % 3]
        path = root / "raw" / label / f"src_{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_audio(path, _tone(200 + 100 * i), MEDIA["sample_rate"])
        rows.append({"id": f"{label}/src_{i}.wav", "path": f"raw/{label}/src_{i}.wav", "label": label,
                     "split": "train", "sha256": f"{i:064x}"})  # fmt: skip
    manifest.write(pd.DataFrame(rows), lay.split)
    issues = pd.DataFrame(rows).assign(
        reason="labelled '2' but out-of-sample model gives '1'", suggested="1", label_quality=0.1,
        is_issue=[i == 5 for i in range(6)],
    )  # fmt: skip
    issues[["id", "path", "label", "reason", "suggested", "label_quality", "is_issue"]].to_parquet(lay.label_issues)
    files = lay.base / "candidates" / "files"
    files.mkdir(parents=True)
    queue = []
    for i in range(N_CANDIDATES):
        name = f"{EVIL}_{i}.wav" if i == 0 else f"cand_{i}.wav"
        save_audio(files / name, _tone(300 + 50 * i), MEDIA["sample_rate"])
        src = rows[i]
        queue.append({"id": f"aug/c{i}", "path": f"data/{DATASET}/candidates/files/{name}", "label": src["label"],
                      "kind": "candidate", "reason": f"ambiguous: clarity 0.4{i} {EVIL if i == 0 else ''}",
                      "target_slice": "condition=car" if i < 3 else "condition=babble", "source_id": src["id"],
                      "realism": 0.5, "clarity": 0.4, "weakness": 0.9,
                      "suggested": "", "label_quality": ""})  # fmt: skip
    flagged = rows[5]
    queue.append({"id": flagged["id"], "path": flagged["path"], "label": flagged["label"], "kind": "label_issue",
                  "reason": "labelled '2' but out-of-sample model gives '1'", "target_slice": "", "source_id": "",
                  "realism": "", "clarity": "", "weakness": "", "suggested": "1", "label_quality": 0.1})  # fmt: skip
    lay.checklist_dir.mkdir(parents=True)
    pd.DataFrame(queue).to_csv(lay.checklist_dir / "review_queue.csv", index=False)
    params = {"seed": 3, "datasets": {DATASET: {"modality": "audio", "labels": LABELS, "media": MEDIA,
              "source": {"kind": "csv", "root": "raw", "manifest": "raw/meta.csv"},
              "split": {}, "train": {}, "slices": []}}}  # fmt: skip
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(app: object) -> Iterator[str]:
    """Run an ASGI app with uvicorn in a thread on a free loopback port; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the review app did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
