"""Reading a data set's outputs at git revisions, tags and DVC experiments, from a real tiny git + DVC repository."""

import contextlib
import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml

from curation.revisions import Revision, RevisionError, VersionRef, load_version, parse_ref

PRED = "data/toy/v2/predictions_test.parquet"


def git(root: Path, *args: str) -> str:
    """Run git in `root` as a fixed user; its output."""
    cmd = ["git", "-c", "user.name=test", "-c", "user.email=test@example.org", *args]
    return subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=True).stdout.strip()


def dvc_repo(root: Path) -> None:
    """A fresh git + DVC repository in `root` (no analytics)."""
    from dvc.repo import Repo

    git(root, "init", "-q")
    Repo.init(os.fspath(root)).close()
    (root / ".dvc" / "config").write_text("[core]\n    analytics = false\n")


def commit(root: Path, write: Callable[[Path], None], tag: str) -> None:
    """Write the files of one revision (`write(root)`), track data/ with `dvc add`, commit and tag it."""
    from dvc.repo import Repo

    write(root)
    with contextlib.chdir(root), Repo(os.fspath(root)) as repo:  # dvc add resolves paths from the current folder
        repo.add(["data"])
    git(root, "add", "-A")
    git(root, "commit", "-qm", tag)
    git(root, "tag", tag)


def cache_object(root: Path, data: bytes) -> Path:
    """Where DVC 3 keeps the bytes `data` in the repository's cache."""
    md5 = hashlib.md5(data).hexdigest()
    return root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]


def _frame(ids: list[str], preds: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"id": ids, "label": "a", "pred": preds, "correct": [p == "a" for p in preds]})


def _write(root: Path, v2_preds: list[str], tolerance: float, extra: bool) -> None:
    params = {"seed": 3, "datasets": {"toy": {"slices": [], "audit": {"protected": ["all"], "tolerance": tolerance}}}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    for version, preds in (("v1", ["a", "b", "b"]), ("v2", v2_preds)):
        path = root / f"data/toy/{version}/predictions_test.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        _frame(["s0", "s1", "s2"], preds).to_parquet(path)
    cards = root / "metrics/toy/cards.json"
    if extra:
        (root / "data/toy/targets.json").write_text('[{"slice": "all"}]')
        cards.unlink()
    else:
        cards.parent.mkdir(parents=True, exist_ok=True)
        cards.write_text('{"v2": {"content_md5": "f00", "samples": 3, "changes": {"added": 1e-05}}}')


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tags `first` and `second` (v2 predictions, params and files differ) and a DVC experiment `try-seed`."""
    root = tmp_path_factory.mktemp("repo")
    dvc_repo(root)
    commit(root, lambda r: _write(r, ["a", "b", "a"], 0.02, extra=False), "first")
    commit(root, lambda r: _write(r, ["a", "a", "a"], 0.05, extra=True), "second")
    (root / "make.py").write_text(
        "import pathlib, yaml\n"
        "seed = yaml.safe_load(open('params.yaml'))['seed']\n"
        "pathlib.Path('results').mkdir(exist_ok=True)\n"
        "pathlib.Path('results/seed.txt').write_text(str(seed))\n"
    )
    stage = {"cmd": f"{sys.executable} make.py", "deps": ["make.py"], "params": ["seed"], "outs": ["results"]}
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"make": stage}}))
    subprocess.run([sys.executable, "-m", "dvc", "repro", "-q"], cwd=root, check=True, capture_output=True)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "stage")
    run = [sys.executable, "-m", "dvc", "exp", "run", "-q", "-S", "seed=7", "-n", "try-seed"]
    subprocess.run(run, cwd=root, check=True, capture_output=True)
    return root


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("HEAD", VersionRef("HEAD", "v2")),
        ("HEAD:v1", VersionRef("HEAD", "v1")),
        ("v1.0:v2", VersionRef("v1.0", "v2")),
        ("main~2:v1", VersionRef("main~2", "v1")),
        ("try-seed", VersionRef("try-seed", "v2")),
    ],
)
def test_rev_and_version_are_parsed(text, ref):
    assert parse_ref(text) == ref
    assert ref.name == f"{ref.rev}:{ref.version}"


@pytest.mark.parametrize(
    ("text", "message"),
    [("HEAD:v3", "unknown version 'v3'"), ("HEAD:", "unknown version ''"), (":v1", "no revision")],
)
def test_a_bad_rev_or_version_is_refused(text, message):
    with pytest.raises(RevisionError, match=message):
        parse_ref(text)


def test_predictions_are_read_as_each_tag_recorded_them_not_from_the_workspace(repo):
    workspace = repo / PRED
    current = workspace.read_bytes()
    workspace.write_bytes(b"not what any revision recorded")
    try:
        with Revision("first", repo) as first, Revision("second", repo) as second:
            assert first.read_parquet(PRED)["pred"].tolist() == ["a", "b", "a"]
            assert second.read_parquet(PRED)["pred"].tolist() == ["a", "a", "a"]
            assert first.commit == git(repo, "rev-parse", "first")
            assert second.read_json("data/toy/targets.json") == [{"slice": "all"}]
    finally:
        workspace.write_bytes(current)


def test_a_dvc_experiment_is_read_by_its_name(repo):
    with Revision("try-seed", repo) as exp, Revision("HEAD", repo) as head:
        assert exp.read_bytes("results/seed.txt") == b"7"
        assert exp.read_yaml("params.yaml")["seed"] == 7
        assert head.read_bytes("results/seed.txt") == b"3"
        assert exp.commit != head.commit


def test_load_version_reads_predictions_params_and_card(repo):
    with Revision("first", repo) as first, Revision("second", repo) as second:
        old, new = load_version(first, "toy", "v2"), load_version(second, "toy", "v1")
    assert old.ref == VersionRef("first", "v2") and new.ref == VersionRef("second", "v1")
    assert old.params == {"seed": 3, "slices": [], "audit": {"protected": ["all"], "tolerance": 0.02}}
    assert new.params["audit"]["tolerance"] == 0.05
    assert old.card == {"content_md5": "f00", "samples": 3, "changes": {"added": 1e-05}}
    assert new.card is None  # that revision wrote no cards
    assert new.predictions["pred"].tolist() == ["a", "b", "b"]


def test_an_unknown_revision_is_named(repo):
    with pytest.raises(RevisionError, match="unknown revision 'nope'"):
        Revision("nope", repo)


def test_a_file_the_revision_lacks_is_named_with_the_revision(repo):
    with Revision("first", repo) as first, pytest.raises(RevisionError) as err:
        first.read_bytes("data/toy/targets.json")
    assert "data/toy/targets.json does not exist at revision 'first'" in str(err.value)
    with Revision("second", repo) as second, pytest.raises(RevisionError, match="has no data set 'other'"):
        load_version(second, "other", "v2")


def test_data_missing_from_the_cache_is_named_with_the_revision_and_the_path(repo):
    with Revision("first", repo) as first:
        obj = cache_object(repo, first.read_bytes(PRED))
    aside = obj.with_name(obj.name + ".aside")
    obj.rename(aside)
    try:
        with Revision("first", repo) as first, pytest.raises(RevisionError) as err:
            first.read_parquet(PRED)
    finally:
        aside.rename(obj)
    message = str(err.value)
    assert message.startswith(f"{PRED} at revision 'first'")
    assert "not in the DVC cache" in message and "dvc fetch --rev first" in message


def test_a_sample_dvc_does_not_track_is_read_from_disk_only_with_its_recorded_hash(repo):
    outside = repo / "raw.bin"  # not tracked at any revision: a source referenced where it is
    outside.write_bytes(b"pcm")
    try:
        with Revision("first", repo) as first:
            assert first.sample_bytes("raw.bin", hashlib.sha256(b"pcm").hexdigest()) == b"pcm"
            with pytest.raises(RevisionError, match="the file on disk has changed"):
                first.sample_bytes("raw.bin", hashlib.sha256(b"other").hexdigest())
            with pytest.raises(RevisionError, match=r"raw\.bin does not exist at revision 'first'"):
                first.sample_bytes("raw.bin")
    finally:
        outside.unlink()
