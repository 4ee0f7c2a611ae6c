"""Time the train stage on FSDD's official train clips (loading + fitting) and print the median of runs.

Usage (from the repository root): python -m benchmarks.train_fsdd [--runs 3] [--seed 0]
Trains the audio baseline as the pipeline's train stage does (`cmd_train` in curation/cli.py): the media and
train settings of examples/fsdd.params.yaml, on the 2,700 clips whose official_split is train, with 15% of
them carved out as dev (stratified by label, drawn from a seeded generator). The files are read where they are
(../shared/data). Target: loading + training under 2 minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import pandas as pd

from benchmarks.common import DEV_FRACTION, SHARED, dev_mask, example_block
from curation.features import load_inputs
from curation.train import train_model

FSDD = SHARED / "fsdd"


def _one_run(train: pd.DataFrame, dev: pd.DataFrame, block: dict, seed: int) -> dict[str, float | int]:
    """Load and train once, as `cmd_train` does; the timings and the kept epoch's dev accuracy."""
    labels = [str(x) for x in block["labels"]]
    index = {label: k for k, label in enumerate(labels)}
    media_cfg = {block["modality"]: block["media"]}
    start = time.perf_counter()
    x_train = load_inputs([str(FSDD / p) for p in train["path"]], block["modality"], media_cfg)
    x_dev = load_inputs([str(FSDD / p) for p in dev["path"]], block["modality"], media_cfg)
    loaded = time.perf_counter()
    result = train_model(
        x_train, np.array([index[x] for x in train["label"]]),
        x_dev, np.array([index[x] for x in dev["label"]]),
        labels, block["modality"], block["train"] | {"media": block["media"]}, seed, progress=False,
    )  # fmt: skip
    end = time.perf_counter()
    return {
        "load_s": loaded - start,
        "train_s": end - loaded,
        "total_s": end - start,
        "epochs": len(result.history),
        "best_epoch": result.best_epoch,
        "dev_accuracy": float(result.history[result.best_epoch]["dev_accuracy"]),
    }


def main() -> int:
    """Run the benchmark; exit 0 having printed the numbers, or 0 with a note when the data is absent."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not (FSDD / "metadata.csv").is_file():
        print(f"FSDD not found at {FSDD}: nothing to time")
        return 0
    block = example_block("fsdd")
    meta = pd.read_csv(FSDD / "metadata.csv", dtype={"label": str})
    pool = meta[meta["official_split"] == "train"].sort_values("path").reset_index(drop=True)
    dev_rows = dev_mask(pool["label"], DEV_FRACTION, args.seed)
    train, dev = pool[~dev_rows], pool[dev_rows]
    print(f"fsdd: {len(train)} train + {len(dev)} dev clips, train settings {block['train']}")
    runs = []
    for k in range(args.runs):
        r = _one_run(train, dev, block, args.seed)
        runs.append(r)
        print(
            f"run {k + 1}: loading {r['load_s']:.1f} s, training {r['train_s']:.1f} s, total {r['total_s']:.1f} s; "
            f"{r['epochs']} epochs, best epoch {r['best_epoch']}, dev accuracy {r['dev_accuracy']:.3f}"
        )
    med = {key: statistics.median(float(r[key]) for r in runs) for key in runs[0]}
    print(
        f"median of {args.runs}: loading {med['load_s']:.1f} s, training {med['train_s']:.1f} s, "
        f"total {med['total_s']:.1f} s; dev accuracy {med['dev_accuracy']:.3f} "
        f"(target: total under 120 s: {'met' if med['total_s'] < 120 else 'NOT met'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
