"""What the real-data benchmarks share: where the data lives and how a dev set is carved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from augment.rng import generator

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
DEV_FRACTION = 0.15


def dev_mask(labels: pd.Series, fraction: float, seed: int) -> np.ndarray:
    """True for the dev rows: round(fraction x count) of each label, drawn with a seeded generator."""
    rng = generator(seed, "benchmark", "dev")
    dev = np.zeros(len(labels), dtype=bool)
    for label in sorted(labels.unique()):
        rows = np.flatnonzero((labels == label).to_numpy())
        dev[rng.choice(rows, size=round(fraction * rows.size), replace=False)] = True
    return dev


def example_block(name: str) -> dict[str, Any]:
    """A data set's params block from examples/<name>.params.yaml (written to be pasted under `datasets:`)."""
    text = (ROOT / "examples" / f"{name}.params.yaml").read_text()
    return yaml.safe_load("datasets:\n" + text)["datasets"][name]
