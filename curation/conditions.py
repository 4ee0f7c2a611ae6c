"""Evaluation sets with stress-test slices: each dev/test sample clean and under every named condition.

A condition is an augmentation pipeline with fixed parameters (`params.yaml` `conditions`), e.g. car noise at
exactly 5 dB SNR or a dark exposure. Test conditions draw background noise only from the `test` pool, so no
test noise is ever seen by training or augmentation. Dev conditions draw from the `dev` pool when the noise
table has one (`hold_out_dev_noise` carves it out of the `augment` pool), else from the `augment` pool: then
dev measures the model on the very clips augmentation mixes in, and over-rates what targeted noise achieved.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from augment.noise import NoiseClip, NoisePool
from augment.pipeline import Pipeline, build_pipeline
from augment.rng import derive_seed, generator
from curation import manifest, media
from curation.io import write_bytes

TRAIN_NOISE_POOL = "augment"  # the pool augmentation mixes in (curation.candidates)
NOISE_POOL_FOR_PART = {"dev": TRAIN_NOISE_POOL, "test": "test"}  # dev: unless the table holds a DEV_NOISE_POOL
DEV_NOISE_POOL = "dev"
CLEAN = "clean"


def hold_out_dev_noise(
    noise: pd.DataFrame, fraction: float, seed: int, within: str = "group", cluster: str | None = None
) -> pd.DataFrame:
    """The noise table with a seeded share of the `augment` pool moved to pool `dev` (a copy).

    Within each value of the column `within` (the group, or a finer kind such as ESC-50's category, so that
    every kind is heard on both sides), round(fraction x n) of its n clusters, at least 1 and at most n - 1, go
    to dev. A cluster is a value of the column `cluster` (e.g. the recording clips were cut from: two cuts of
    one recording are nearly the same noise) or, without one, a single clip. The draw is made from a generator
    seeded by (seed, the `within` value) over the sorted cluster names, so it does not depend on row order.
    Raises ValueError when the fraction is outside (0, 1), a column is missing, or some value of `within` has
    fewer than 2 augment clusters (it cannot be heard on both sides).
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the dev share of the augment noise must be in (0, 1), got {fraction!r}")
    missing = [c for c in ("id", "pool", within, cluster) if c is not None and c not in noise.columns]
    if missing:
        raise ValueError(f"the noise table lacks column(s) {missing}")
    in_augment = noise["pool"] == TRAIN_NOISE_POOL
    keys = (noise[cluster] if cluster else noise["id"]).astype(str)
    to_dev: set[str] = set()
    for kind, names in keys[in_augment].groupby(noise.loc[in_augment, within]):
        clusters = sorted(set(names))
        if len(clusters) < 2:
            raise ValueError(f"noise {within} {kind!r} has {len(clusters)} augment cluster(s): need 2 to hold one out")
        n_dev = min(max(round(fraction * len(clusters)), 1), len(clusters) - 1)
        chosen = generator(seed, "dev noise", kind).choice(len(clusters), size=n_dev, replace=False)
        to_dev |= {clusters[k] for k in chosen}
    moved = (in_augment & keys.isin(to_dev)).to_numpy()
    return noise.assign(pool=np.where(moved, DEV_NOISE_POOL, noise["pool"].to_numpy()))


def noise_pool_for(noise: pd.DataFrame, part: str) -> str:
    """The pool a part's conditions draw noise from: `test` for test; for dev, `dev` when the table has one."""
    if part == "dev" and len(noise) and (noise["pool"] == DEV_NOISE_POOL).any():
        return DEV_NOISE_POOL
    return NOISE_POOL_FOR_PART[part]


def noise_pool(noise: pd.DataFrame, pool: str, sample_rate: int) -> NoisePool:
    """The background-noise clips of one pool (`augment` or `test`), decoded at the data's sample rate."""
    rows = noise[noise["pool"] == pool].sort_values("id")
    clips = [
        NoiseClip(id=r.id, group=r.group, samples=media.load_audio(r.path, sample_rate), sample_rate=sample_rate)
        for r in rows.itertuples()
    ]
    return NoisePool(clips)


def load_sample(path: str, modality: str, media_cfg: dict[str, Any]) -> np.ndarray:
    """A sample's array as the augmentation pipelines take it."""
    if modality == "audio":
        return media.load_audio(path, media_cfg["sample_rate"])
    return media.load_image(path, media_cfg.get("channels", 1))


def encode_sample(x: np.ndarray, modality: str, media_cfg: dict[str, Any]) -> bytes:
    """An augmented sample as the bytes of the modality's file format (what `save_sample` writes)."""
    if modality == "audio":
        return media.encode_audio(x, media_cfg["sample_rate"])
    return media.encode_image(x)


def save_sample(path: Path, x: np.ndarray, modality: str, media_cfg: dict[str, Any]) -> None:
    """Write an augmented sample in the modality's file format."""
    write_bytes(path, encode_sample(x, modality, media_cfg))


SUFFIX = {"audio": ".wav", "image": ".png"}  # the file format `save_sample` writes per modality


def file_name(sample_id: str, modality: str) -> str:
    """A flat, safe file name for a derived sample id."""
    return f"{derive_seed(0, sample_id):016x}{SUFFIX[modality]}"


def augment_sample(pipeline: Pipeline, x: np.ndarray, seed: int, sample_id: str) -> tuple[np.ndarray, list[dict]]:
    """Run a pipeline on one sample; a failure names the sample."""
    try:
        return pipeline(x, seed)
    except ValueError as exc:
        raise ValueError(f"sample {sample_id!r}: {exc}") from exc


def build_pipelines(
    conditions: dict[str, list[dict]], modality: str, media_cfg: dict[str, Any], pool: NoisePool | None
) -> dict[str, Pipeline]:
    """One pipeline per named condition."""
    return {
        name: build_pipeline(modality, spec, sample_rate=media_cfg.get("sample_rate"), noise=pool)
        for name, spec in conditions.items()
    }


def build_eval_set(
    split_df: pd.DataFrame,
    part: str,
    conditions: dict[str, list[dict]],
    modality: str,
    media_cfg: dict[str, Any],
    noise: pd.DataFrame,
    seed: int,
    out_dir: Path,
    path_root: Path | None = None,
) -> pd.DataFrame:
    """The `part` (dev or test) samples, clean and under each condition.

    Derived files are written under `out_dir` and recorded under `path_root` (default `out_dir`): a stage
    writes into a temporary folder that is renamed to `path_root` when it succeeds.
    """
    clash = sorted({"condition", "source_id", "augment_params"} & set(split_df.columns))
    if clash:
        raise ValueError(
            f"metadata column(s) {clash} clash with the columns the conditions stage adds; rename them in the source"
        )
    if CLEAN in conditions:
        raise ValueError(f"condition name {CLEAN!r} is reserved for the unaltered samples; choose another name")
    base = split_df[split_df["split"] == part].sort_values("id").reset_index(drop=True)
    pool = None
    if modality == "audio" and len(noise):
        pool = noise_pool(noise, noise_pool_for(noise, part), media_cfg["sample_rate"])
    pipelines = build_pipelines(conditions, modality, media_cfg, pool)
    clean = base.assign(condition=CLEAN, source_id=base["id"], augment_params="")
    rows = [clean]
    for name, pipeline in pipelines.items():
        derived = []
        for r in tqdm(base.to_dict("records"), total=len(base), desc=f"{part}/{name}", leave=False):
            x = load_sample(r["path"], modality, media_cfg)
            y, applied = augment_sample(pipeline, x, derive_seed(seed, "condition", name, r["id"]), r["id"])
            new_id = f"{r['id']}@{name}"
            rel = Path(part) / name / file_name(new_id, modality)
            save_sample(out_dir / rel, y, modality, media_cfg)
            row = r | {
                "id": new_id,
                "path": str((path_root or out_dir) / rel),
                "sha256": manifest.file_sha256(out_dir / rel),
                "condition": name,
                "source_id": r["id"],
                "augment_params": json.dumps(applied, sort_keys=True),
            }
            derived.append(row)
        rows.append(pd.DataFrame(derived, columns=clean.columns))
    return pd.concat(rows, ignore_index=True)
