"""Version cards: content hash as DVC computes it, the code's git revision, counts, and the Markdown."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pandas as pd
import yaml

from curation.cards import card_markdown, file_md5, git_revision, version_card
from curation.layout import Layout

ROOT = Path(__file__).resolve().parents[1]


def test_file_md5_is_the_md5_of_the_bytes(tmp_path):
    path = tmp_path / "m.parquet"
    path.write_bytes(b"manifest bytes")
    assert file_md5(path) == hashlib.md5(b"manifest bytes").hexdigest()


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def test_git_revision_names_the_commit_and_marks_uncommitted_changes(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "curation").mkdir()
    (tmp_path / "curation" / "code.py").write_text("x = 1\n")
    (tmp_path / "dvc.lock").write_text("stages: {}\n")
    _git(tmp_path, "add", "curation/code.py", "dvc.lock")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    head = _git(tmp_path, "rev-parse", "HEAD")
    (tmp_path / "untracked.txt").write_text("not part of the code")
    (tmp_path / "dvc.lock").write_text("stages: {train: {}}\n")  # dvc repro rewrites it: not code
    assert git_revision(tmp_path) == head
    (tmp_path / "curation" / "code.py").write_text("x = 2\n")
    assert git_revision(tmp_path) == head + "+dirty"


def test_git_revision_outside_a_repository_is_none(tmp_path):
    assert git_revision(tmp_path) is None


FRAME = pd.DataFrame(
    {
        "id": ["a", "b", "c", "d", "e"],
        "split": ["train", "train", "train", "dev", "test"],
        "label": ["1", "0", "1", "0", "1"],
        "speaker": ["jo", "jo", "al", "al", "jo"],
    }
)
TEST = {"slices": {"all": {"accuracy": 0.75, "ci_low": 0.5, "ci_high": 1.0, "n": 4}}}


def test_a_card_counts_splits_labels_and_slice_values_of_the_training_part():
    card = version_card(dataset="ds", version="v2", manifest_df=FRAME, content_md5="abc", slice_columns=["speaker",
                        "condition"], changes={"added": 2}, params={"seed": 1}, metrics=TEST, training={"epochs": 3},
                        revision="f00")  # fmt: skip
    assert card == {
        "dataset": "ds", "version": "v2", "content_md5": "abc", "git_revision": "f00", "samples": 5,
        "per_split": {"dev": 1, "test": 1, "train": 3}, "train_per_label": {"0": 1, "1": 2},
        "train_per_slice_value": {"speaker": {"al": 1, "jo": 2}},  # condition is not a column: no entry
        "changes": {"added": 2}, "params": {"seed": 1}, "training": {"epochs": 3}, "test": TEST,
    }  # fmt: skip


def test_the_markdown_card_shows_identity_changes_and_the_slice_table():
    card = version_card(dataset="ds", version="v1", manifest_df=FRAME, content_md5="abc", slice_columns=[],
                        changes={"quarantined": 0}, params={"seed": 1}, metrics=TEST, training={},
                        revision=None)  # fmt: skip
    text = card_markdown(card)
    assert text.startswith("# ds v1\n")
    assert "- content (md5 of the manifest, as DVC hashes it): `abc`" in text
    assert "- code: git `unknown`" in text
    assert "| all | 0.750 | 0.500 | 1.000 | 4 |" in text
    assert '"quarantined": 0' in text


def test_the_card_stage_writes_the_layouts_files():
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["card"]["do"]
    declared = {next(iter(e)) if isinstance(e, dict) else e for e in stage["outs"] + stage["metrics"]}
    lay = Layout("${key}")
    assert declared == {str(lay.card("v1")), str(lay.card("v2")), str(lay.cards)}
