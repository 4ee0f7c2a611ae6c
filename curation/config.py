"""Read params.yaml: the seed and one entry per data set."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

MODALITIES = ("image", "audio")


class ConfigError(ValueError):
    """params.yaml is missing something a stage needs; the message names the key."""


def load_params(path: str | os.PathLike[str] = "params.yaml") -> dict[str, Any]:
    """The parsed params file."""
    with Path(path).open(encoding="utf-8") as f:
        params = yaml.safe_load(f)
    if not isinstance(params, dict) or "seed" not in params or "datasets" not in params:
        raise ConfigError(f"{path}: needs top-level 'seed' and 'datasets'")
    return params


def dataset_config(params: dict[str, Any], name: str) -> dict[str, Any]:
    """One data set's entry, checked for the keys every stage relies on."""
    datasets = params.get("datasets") or {}
    if name not in datasets:
        raise ConfigError(f"no data set {name!r} in params.yaml; known: {', '.join(sorted(datasets))}")
    cfg = datasets[name]
    missing = [k for k in ("modality", "source", "media", "split", "train", "slices") if k not in cfg]
    if missing:
        raise ConfigError(f"datasets.{name}: missing {', '.join(missing)}")
    if cfg["modality"] not in MODALITIES:
        raise ConfigError(f"datasets.{name}.modality: {cfg['modality']!r} is not one of {MODALITIES}")
    return cfg
