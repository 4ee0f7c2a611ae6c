"""A data set's outputs as they were at any git revision, tag or DVC experiment, read through DVC.

Git-tracked files (params, metrics, version cards) come from the revision's commit; DVC-tracked outputs (test
predictions, evaluation sets) from the DVC cache, by the hashes that revision recorded, never from the
workspace. A version is named `REV` or `REV:VERSION`: VERSION is v1 (the baseline) or v2 (the curated
version, the default), so `HEAD:v1` is the baseline at HEAD and `my-exp` the curated version of a DVC
experiment.

One `dvc.api.DVCFileSystem` per revision, pinned to its commit: `dvc.api.open` opens the repository again
for every file (0.8 s each here), and a report reads dozens of test samples.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
import yaml

from curation.layout import Layout
from curation.manifest import file_sha256

VERSIONS = ("v1", "v2")
DEFAULT_VERSION = "v2"
PART = "test"


class RevisionError(ValueError):
    """A revision that does not exist, a file it lacks, or a file whose data the DVC cache lacks."""


@dataclass(frozen=True)
class VersionRef:
    """One version of a data set at one revision: `rev` (git revision, tag or DVC experiment) and `version`."""

    rev: str
    version: str

    @property
    def name(self) -> str:
        """`REV:VERSION`, the name the comparison shows."""
        return f"{self.rev}:{self.version}"


def parse_ref(text: str) -> VersionRef:
    """`REV` (the curated version, v2) or `REV:VERSION` (v1 or v2). Git refs and experiment names cannot
    hold ':', so the last ':' separates the version."""
    rev, sep, version = text.rpartition(":")
    if not sep:
        rev, version = text, DEFAULT_VERSION
    if not rev:
        raise RevisionError(f"{text!r}: no revision (expected REV or REV:VERSION)")
    if version not in VERSIONS:
        raise RevisionError(
            f"{text!r}: unknown version {version!r}; expected REV or REV:VERSION with VERSION "
            f"{' or '.join(VERSIONS)} (v1: the baseline, v2: the curated version, the default)"
        )
    return VersionRef(rev, version)


class Revision:
    """The files of one git revision, tag or DVC experiment of a DVC repository (default: the one holding
    the current folder)."""

    def __init__(self, rev: str, repo: str | os.PathLike[str] | None = None) -> None:
        from dvc.api import DVCFileSystem
        from dvc.exceptions import NotDvcRepoError
        from dvc.repo import Repo
        from dvc.scm import RevError, resolve_rev

        self.rev = rev
        try:
            with Repo(None if repo is None else os.fspath(repo)) as dvc_repo:
                self.root = Path(dvc_repo.root_dir)
                self.commit = resolve_rev(dvc_repo.scm, rev)
        except NotDvcRepoError as exc:
            raise RevisionError(f"revision {rev!r}: {exc}") from exc
        except RevError as exc:
            raise RevisionError(
                f"unknown revision {rev!r}: not a git commit, branch, tag or DVC experiment of {self.root}"
            ) from exc
        self._fs = DVCFileSystem(os.fspath(self.root), rev=self.commit)

    def __enter__(self) -> Revision:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the repository the file system holds open."""
        self._fs.close()

    def exists(self, path: str | os.PathLike[str]) -> bool:
        """Whether the revision has the file: git-tracked or a DVC output (whether or not the cache has it)."""
        return bool(self._fs.isfile(_posix(path)))

    def read_bytes(self, path: str | os.PathLike[str]) -> bytes:
        """The file's bytes at this revision; a RevisionError names the revision and the path when the
        revision lacks the file or the DVC cache lacks its data."""
        name = _posix(path)
        try:
            return self._fs.read_bytes(name)
        except FileNotFoundError as exc:
            if self.exists(name):
                raise RevisionError(
                    f"{name} at revision {self.rev!r} ({self.commit[:12]}): DVC tracks it, but its data is not in "
                    f"the DVC cache; fetch it (dvc fetch --rev {self.rev}, or dvc pull) or reproduce that revision"
                ) from exc
            raise RevisionError(
                f"{name} does not exist at revision {self.rev!r} ({self.commit[:12]}): neither a DVC output nor a "
                "git-tracked file there"
            ) from exc

    def read_parquet(self, path: str | os.PathLike[str]) -> pd.DataFrame:
        """A parquet file at this revision."""
        return pd.read_parquet(io.BytesIO(self.read_bytes(path)))

    def read_yaml(self, path: str | os.PathLike[str]) -> Any:
        """A YAML file at this revision, such as params.yaml."""
        return yaml.safe_load(self.read_bytes(path).decode("utf-8"))

    def read_json(self, path: str | os.PathLike[str]) -> Any:
        """A JSON file at this revision, such as a metrics file."""
        return json.loads(self.read_bytes(path).decode("utf-8"))

    def sample_bytes(self, path: str, sha256: str | None = None) -> bytes:
        """A test sample's file: from this revision through DVC, or, when DVC does not track it there (a
        source outside the project, referenced where it is), from disk, only if it still has the bytes
        whose `sha256` the predictions recorded."""
        try:
            return self.read_bytes(path)
        except RevisionError:
            on_disk = self.root / path
            if not sha256 or not on_disk.is_file():
                raise
            if file_sha256(on_disk) != sha256:
                raise RevisionError(
                    f"{path}: not tracked at revision {self.rev!r}, and the file on disk has changed since"
                ) from None
            return on_disk.read_bytes()


def _posix(path: str | os.PathLike[str]) -> str:
    return str(PurePosixPath(Path(path)))


@dataclass
class VersionData:
    """What a comparison reads of one version: its test predictions, the data set's params, and its card."""

    ref: VersionRef
    commit: str
    predictions: pd.DataFrame
    params: dict[str, Any]
    card: dict[str, Any] | None


def load_version(
    revision: Revision, dataset: str, version: str, params_file: str | os.PathLike[str] = "params.yaml"
) -> VersionData:
    """One version of `dataset` at a revision: its test predictions (from the DVC cache), the data set's
    params block and the version card (None when that revision wrote no cards)."""
    lay = Layout(dataset)
    params = revision.read_yaml(params_file) or {}
    block = (params.get("datasets") or {}).get(dataset)
    if block is None:
        raise RevisionError(f"{params_file} at revision {revision.rev!r} has no data set {dataset!r}")
    cards = revision.read_json(lay.cards) if revision.exists(lay.cards) else {}
    return VersionData(
        ref=VersionRef(revision.rev, version),
        commit=revision.commit,
        predictions=revision.read_parquet(lay.predictions(version, PART)),
        params={"seed": params.get("seed"), **block},
        card=cards.get(version),
    )
