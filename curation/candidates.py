"""Augmentation candidates aimed at the analysis' top slices.

The budget is shared among the target slices in proportion to their priority (gap x share). Each candidate
records its source sample, the slice it targets, the policy and the exact applied parameters, and is made from
a seed derived from (root seed, slice, index): re-running it regenerates the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from augment.pipeline import build_pipeline
from augment.rng import derive_seed, generator
from curation import manifest
from curation.conditions import augment_sample, file_name, load_sample, noise_pool, save_sample

TRAIN_NOISE_POOL = "augment"


def allocate_budget(priorities: dict[str, float], budget: int) -> dict[str, int]:
    """Split `budget` among slices in proportion to priority (largest remainders, ties by name)."""
    positive = {k: v for k, v in priorities.items() if v > 0}
    if budget < 0:
        raise ValueError(f"augment budget must be >= 0, got {budget}")
    if not positive:
        return {k: 0 for k in priorities}
    total = sum(positive.values())
    exact = {k: budget * v / total for k, v in positive.items()}
    counts = {k: int(np.floor(v)) for k, v in exact.items()}
    left = budget - sum(counts.values())
    for k in sorted(exact, key=lambda k: (-(exact[k] - counts[k]), k))[:left]:
        counts[k] += 1
    return {k: counts.get(k, 0) for k in priorities}


def pick_sources(train: pd.DataFrame, n: int, seed: int, target: str) -> list[str]:
    """`n` source ids from the training set, a seeded permutation cycled as often as needed."""
    ids = np.array(sorted(train["id"]))
    order = generator(seed, "sources", target).permutation(len(ids))
    return [str(ids[order[k % len(ids)]]) for k in range(n)]


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
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Make the candidates for the targets that have a policy; return them and a plan that says what was done.

    `targets` are the analysis' rows ({"slice", "priority"}); slices without a policy get no budget and are
    listed in the plan as such, so that a user sees which weak slices the policies do not cover yet.
    `budget` is the number of samples the new version may gain, shared by priority (the plan's `allocation`);
    `oversample` candidates are made per budgeted sample, so that the checklist can keep the best of them
    (`versions.within_budget`). Files are written under `out_dir` and recorded under `path_root` (default
    `out_dir`).
    """
    if isinstance(oversample, bool) or not isinstance(oversample, int) or oversample < 1:
        raise ValueError(f"augment oversample must be an integer >= 1, got {oversample!r}")
    train = split_df[split_df["split"] == "train"]
    covered = {t["slice"]: float(t["priority"]) for t in targets if t["slice"] in policies}
    uncovered = [t["slice"] for t in targets if t["slice"] not in policies]
    allocation = allocate_budget(covered, budget)
    pool = None
    if modality == "audio" and len(noise):
        pool = noise_pool(noise, TRAIN_NOISE_POOL, media_cfg["sample_rate"])
    # Each source's metadata as a plain dict, made once: a per-sample `.loc` lookup costs more than the augmentation.
    by_id = train.set_index("id").to_dict("index")
    rows: list[dict[str, Any]] = []
    for target, share in allocation.items():
        count = share * oversample
        spec = policies[target]
        pipeline = build_pipeline(modality, spec, sample_rate=media_cfg.get("sample_rate"), noise=pool)
        for k, source_id in enumerate(tqdm(pick_sources(train, count, seed, target), desc=target, leave=False)):
            src = by_id[source_id]
            sample_seed = derive_seed(seed, "candidate", target, k)
            y, applied = augment_sample(pipeline, load_sample(src["path"], modality, media_cfg), sample_seed, source_id)
            cand_id = f"aug/{target}/{k:05d}"
            rel = Path("files") / file_name(cand_id, modality)
            save_sample(out_dir / rel, y, modality, media_cfg)
            rows.append(
                src
                | {
                    "id": cand_id,
                    "path": str((path_root or out_dir) / rel),
                    "split": "train",
                    "sha256": manifest.file_sha256(out_dir / rel),
                    "source_id": source_id,
                    "target_slice": target,
                    "policy": json.dumps(spec, sort_keys=True),
                    "seed": str(sample_seed),
                    "augment_params": json.dumps(applied, sort_keys=True),
                }
            )
    columns = [*train.columns, "source_id", "target_slice", "policy", "seed", "augment_params"]
    candidates = pd.DataFrame(rows, columns=list(dict.fromkeys(columns)))
    plan = {"budget": budget, "oversample": oversample, "allocation": allocation, "targets_without_policy": uncovered}
    return candidates, plan
