"""Train the image CNN on the Roman numerals at two learning rates and print dev and val accuracy.

Usage (from the repository root): python -m benchmarks.roman_centring [--lr 0.003 0.0005] [--seed 0]
What it measures: whether the image network trains on dark-ink-on-white inputs (mean pixel ~0.95). The media
and train settings come from examples/roman.params.yaml (the learning rate from --lr); train is the data set's
train + label_book part with 15% carved out as dev (stratified by label, seeded), and val is evaluated as the
local test set, as the pipeline's split does. The files are read where they are (../shared/data/roman).
Before the input centring: val 0.22 at lr 0.003 and 0.59 at lr 0.0005 (through the pipeline).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd

from benchmarks.common import DEV_FRACTION, SHARED, dev_mask, example_block
from curation.features import load_inputs
from curation.train import predict_proba, train_model

ROMAN = SHARED / "roman"


def main() -> int:
    """Run the comparison; exit 0 having printed the numbers, or 0 with a note when the data is absent."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lr", type=float, nargs="+", default=[0.003, 0.0005])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not (ROMAN / "metadata.csv").is_file():
        print(f"Roman numerals not found at {ROMAN}: nothing to measure")
        return 0
    block = example_block("roman")
    labels = [str(x) for x in block["labels"]]
    index = {label: k for k, label in enumerate(labels)}
    meta = pd.read_csv(ROMAN / "metadata.csv", dtype={"label": str}).sort_values("path").reset_index(drop=True)
    pool = meta[meta["split"].isin(["train", "label_book"])].reset_index(drop=True)
    val = meta[meta["split"] == "val"]
    dev_rows = dev_mask(pool["label"], DEV_FRACTION, args.seed)
    media_cfg = {"image": block["media"]}

    def inputs(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        x = load_inputs([str(ROMAN / p) for p in df["path"]], "image", media_cfg).numpy()
        return x, np.array([index[v] for v in df["label"]])

    (xt, yt), (xd, yd), (xv, yv) = inputs(pool[~dev_rows]), inputs(pool[dev_rows]), inputs(val)
    print(f"roman: {len(yt)} train, {len(yd)} dev, {len(yv)} val images; train mean pixel {xt.mean():.3f}")
    for lr in args.lr:
        cfg = block["train"] | {"lr": lr, "media": block["media"]}
        start = time.perf_counter()
        result = train_model(xt, yt, xd, yd, labels, "image", cfg, args.seed, progress=False)
        seconds = time.perf_counter() - start
        best = result.history[result.best_epoch]
        val_acc = float((predict_proba(result.model, xv).argmax(axis=1) == yv).mean())
        print(
            f"lr {lr}: {len(result.history)} epochs ({seconds:.0f} s), best epoch {result.best_epoch}, "
            f"dev accuracy {best['dev_accuracy']:.3f}, val accuracy {val_acc:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
