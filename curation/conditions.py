"""Evaluation sets with stress-test slices: each dev/test sample clean and under every named condition.

A condition is an augmentation pipeline with fixed parameters (`params.yaml` `conditions`), e.g. car noise at
exactly 5 dB SNR or a dark exposure. Dev conditions draw background noise from the `augment` pool, test
conditions only from the `test` pool, so no test noise is ever seen by training or augmentation.
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
from augment.rng import derive_seed
from curation import manifest, media

NOISE_POOL_FOR_PART = {"dev": "augment", "test": "test"}
CLEAN = "clean"


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


def save_sample(path: Path, x: np.ndarray, modality: str, media_cfg: dict[str, Any]) -> None:
    """Write an augmented sample in the modality's file format."""
    if modality == "audio":
        media.save_audio(path, x, media_cfg["sample_rate"])
    else:
        media.save_image(path, x)


def file_name(sample_id: str, modality: str) -> str:
    """A flat, safe file name for a derived sample id."""
    return f"{derive_seed(0, sample_id):016x}" + (".wav" if modality == "audio" else ".png")


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
        pool = noise_pool(noise, NOISE_POOL_FOR_PART[part], media_cfg["sample_rate"])
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
