"""Augmentation candidates aimed at the analysis' top slices.

The budget is shared among the target slices in proportion to their priority (gap x share). Each candidate
records its source sample, the slice it targets, the policy and the exact applied parameters, and is made from
a seed derived from (root seed, slice, index): re-running it regenerates the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from augment.pipeline import Pipeline, build_pipeline
from augment.rng import derive_seed, generator
from curation.budget import allocate_budget
from curation.conditions import SUFFIX, TRAIN_NOISE_POOL, augment_sample, encode_sample, load_sample, noise_pool
from curation.io import write_bytes

__all__ = ["TRAIN_NOISE_POOL", "generate_candidates", "pick_sources"]

FILES = "files"  # the folder of candidate files under the output folder
SINK_BATCH = 256  # candidates handed to `on_batch` at a time (bounded memory: the arrays of one batch)
# a candidate's row, its source and output arrays (when kept for scoring), and whether the output equals the source
Made = tuple[dict[str, Any], np.ndarray | None, np.ndarray | None, bool]
Sink = Callable[[pd.DataFrame, list[np.ndarray], list[np.ndarray]], None]


def pick_sources(train: pd.DataFrame, n: int, seed: int, target: str) -> list[str]:
    """`n` source ids from the training set, a seeded permutation cycled as often as needed."""
    ids = np.array(sorted(train["id"]))
    order = generator(seed, "sources", target).permutation(len(ids))
    return [str(ids[order[k % len(ids)]]) for k in range(n)]


@dataclass(frozen=True)
class _Maker:
    """What making one candidate needs besides its task: the pipelines by target and where files go. Picklable,
    so that worker processes get one copy each (the noise pool inside the pipelines included)."""

    pipelines: dict[str, Pipeline]
    specs: dict[str, str]
    modality: str
    media_cfg: dict[str, Any]
    out_dir: Path
    path_root: Path
    keep_arrays: bool

    @cached_property
    def _folders(self) -> tuple[str, str]:
        """The files folder as written to and as recorded, made once: a path per candidate costs more than a
        noise mix."""
        return str(Path(self.out_dir) / FILES), str(Path(self.path_root) / FILES)

    def _name(self, digest: str) -> str:
        """The file name of the candidate whose bytes have this SHA-256: files are named by content."""
        return f"{digest[:16]}{SUFFIX[self.modality]}"

    def __call__(self, task: tuple[str, int, int, dict[str, Any]]) -> Made:
        """One candidate from (target, k, seed, source row): augment, write, and record what made it; the source
        and output arrays too when `keep_arrays` (for scoring while they are in memory).

        The file is named by its content hash: a candidate id made again with another seed or policy gets
        another file, so a review decision recorded with the old file's path is seen to be stale. An output equal
        to its source (the policy changed nothing) is not written: it is flagged, and dropped as a copy."""
        target, k, sample_seed, src = task
        x = load_sample(src["path"], self.modality, self.media_cfg)
        y, applied = augment_sample(self.pipelines[target], x, sample_seed, src["id"])
        data = encode_sample(y, self.modality, self.media_cfg)
        digest = hashlib.sha256(data).hexdigest()
        unchanged = x.shape == y.shape and bool(np.array_equal(x, y))
        written, recorded = self._folders
        name = self._name(digest)
        if not unchanged:
            write_bytes(os.path.join(written, name), data)
        row = src | {
            "id": f"aug/{target}/{k:05d}",
            "path": os.path.join(recorded, name),
            "split": "train",
            "sha256": digest,
            "source_id": src["id"],
            "target_slice": target,
            "policy": self.specs[target],
            "seed": str(sample_seed),
            "augment_params": json.dumps(applied, sort_keys=True),
        }
        return (row, x, y, unchanged) if self.keep_arrays else (row, None, None, unchanged)


def generate_candidates(
    split_df: pd.DataFrame,
    noise: pd.DataFrame,
    targets: list[dict[str, Any]],
    policies: dict[str, list[dict]],
    budget: int,
    modality: str,
    media_cfg: dict[str, Any],
    seed: int,
    out_dir: Path,
    path_root: Path | None = None,
    oversample: int = 1,
    workers: int = 1,
    min_share: float = 0.0,
    on_batch: Sink | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Make the candidates for the targets that have a policy; return them and a plan that says what was done.

    `targets` are the analysis' rows ({"slice", "priority"}); slices without a policy get no budget and are
    listed in the plan as such, so that a user sees which weak slices the policies do not cover yet.
    `budget` is the number of samples the new version may gain, shared by priority (the plan's `allocation`;
    `min_share`: each target's guaranteed share, see `allocate_budget`);
    `oversample` candidates are made per budgeted sample, so that the checklist can keep the best of them
    (`versions.within_budget`). Files are written under `out_dir` and recorded under `path_root` (default
    `out_dir`). `workers` > 1 makes them in a process pool: every candidate's seed is derived from (seed,
    target, index), so the files and the table are the same bytes as the serial run's.
    `on_batch(rows, sources, outputs)`, if given, receives the candidates SINK_BATCH at a time, in table order,
    with their source and output arrays: the augment stage scores them there without reading a file back.
    """
    if isinstance(oversample, bool) or not isinstance(oversample, int) or oversample < 1:
        raise ValueError(f"augment oversample must be an integer >= 1, got {oversample!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"augment workers must be an integer >= 1, got {workers!r}")
    train = split_df[split_df["split"] == "train"]
    covered = {t["slice"]: float(t["priority"]) for t in targets if t["slice"] in policies}
    uncovered = [t["slice"] for t in targets if t["slice"] not in policies]
    allocation = allocate_budget(covered, budget, min_share)
    pool = None
    if modality == "audio" and len(noise):
        pool = noise_pool(noise, TRAIN_NOISE_POOL, media_cfg["sample_rate"])
    active = [t for t, share in allocation.items() if share]
    maker = _Maker(
        pipelines={t: build_pipeline(modality, policies[t], sample_rate=media_cfg.get("sample_rate"), noise=pool)
                   for t in active},
        specs={t: json.dumps(policies[t], sort_keys=True) for t in active},
        modality=modality, media_cfg=media_cfg, out_dir=out_dir, path_root=path_root or out_dir,
        keep_arrays=on_batch is not None,
    )  # fmt: skip
    repeated = train["id"][train["id"].duplicated()]
    if len(repeated):
        raise ValueError(f"training sample ids must be unique to be sources; {repeated.iloc[0]!r} is repeated")
    # Each source's metadata as a plain dict, made once: a per-sample `.loc` lookup costs more than the augmentation
    # (and column by column, 15 times faster than `to_dict("index")`).
    columns = {c: train[c].tolist() for c in train.columns}
    rows = (dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True))
    by_id = {row["id"]: row for row in rows}
    tasks = [
        (target, k, derive_seed(seed, "candidate", target, k), by_id[source_id])
        for target in active
        for k, source_id in enumerate(pick_sources(train, allocation[target] * oversample, seed, target))
    ]
    bar = {"total": len(tasks), "desc": "candidates", "unit": "sample", "leave": False}
    if workers == 1 or len(tasks) < 2:
        rows, dropped = _collect(tqdm(map(maker, tasks), **bar), on_batch)
    else:
        with ProcessPoolExecutor(max_workers=workers, initializer=_start_worker, initargs=(maker,)) as executor:
            chunk = max(1, math.ceil(len(tasks) / (workers * 8)))
            rows, dropped = _collect(tqdm(executor.map(_make_in_worker, tasks, chunksize=chunk), **bar), on_batch)
    columns = [*train.columns, "source_id", "target_slice", "policy", "seed", "augment_params"]
    candidates = pd.DataFrame(rows, columns=list(dict.fromkeys(columns)))
    plan = {"budget": budget, "oversample": oversample, "allocation": allocation, "targets_without_policy": uncovered,
            "duplicates_dropped": {t: dropped.get(t, 0) for t in active}}  # fmt: skip
    return candidates, plan


_worker_maker: _Maker | None = None  # a worker process's maker, set once when the process starts


def _start_worker(maker: _Maker) -> None:
    """Keep the maker in this worker process. Sent once per process, not with every chunk of tasks as
    `executor.map(maker, ...)` would: the noise pool inside it is megabytes."""
    global _worker_maker
    _worker_maker = maker


def _make_in_worker(task: tuple[str, int, int, dict[str, Any]]) -> Made:
    """One candidate, made in a worker process by the maker `_start_worker` kept."""
    if _worker_maker is None:
        raise RuntimeError("a candidate task ran in a process that generate_candidates did not start")
    return _worker_maker(task)


def _collect(made: Iterable[Made], on_batch: Sink | None) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The rows of the made candidates, in order, handing them with their arrays to `on_batch` in batches, and
    how many were dropped per target as repeats.

    A candidate equal to its source (a policy that happened to change nothing) or with the bytes of an earlier
    candidate (a deterministic policy cycling over the sources) would add a sample twice: it is dropped, not
    scored, and counted; made = kept + dropped. A repeat of an earlier candidate shares its file (files are
    named by content); a copy of its source was never written."""
    rows: list[dict[str, Any]] = []
    batch: list[tuple[dict[str, Any], np.ndarray | None, np.ndarray | None]] = []
    seen: set[str] = set()
    dropped: dict[str, int] = {}

    def flush() -> None:
        if on_batch is not None and batch:
            on_batch(pd.DataFrame([r for r, _, _ in batch]), [x for _, x, _ in batch], [y for _, _, y in batch])
        batch.clear()

    for row, x, y, unchanged in made:
        if unchanged or row["sha256"] in seen:
            dropped[row["target_slice"]] = dropped.get(row["target_slice"], 0) + 1
            continue
        seen.add(row["sha256"])
        rows.append(row)
        if on_batch is not None:
            batch.append((row, x, y))
            if len(batch) == SINK_BATCH:
                flush()
    flush()
    return rows, dropped
