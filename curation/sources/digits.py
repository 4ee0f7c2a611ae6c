"""The image demo: scikit-learn's bundled handwritten digits (real scans, UCI optdigits) as grey PNG files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.datasets import load_digits

from curation.io import write_text
from curation.media import save_image

GREY_LEVELS = 16  # load_digits stores 8x8 images with levels 0..16


def write_digits(out_dir: str | os.PathLike[str], size: int = 32) -> Path:
    """Write the 1,797 digits as `size` x `size` grey PNGs plus `metadata.csv` (path, label, index).

    Upscaled with bicubic interpolation so that the image augmentations have pixels to work on;
    the output is byte-identical across runs. Returns the path of `metadata.csv`.
    """
    if size < 8:
        raise ValueError(f"size {size}: must be at least the 8 pixels of the original digits")
    out = Path(out_dir)
    bunch = load_digits()
    rows = []
    for index, (pixels, target) in enumerate(zip(bunch.images, bunch.target, strict=True)):
        grey = np.rint(pixels * (255.0 / GREY_LEVELS)).clip(0, 255).astype(np.uint8)
        big = Image.fromarray(grey).resize((size, size), Image.Resampling.BICUBIC)
        rel = f"{int(target)}/{index:04d}.png"
        save_image(out / rel, np.asarray(big))
        rows.append({"path": rel, "label": str(int(target)), "index": index})
    meta = out / "metadata.csv"
    write_text(meta, pd.DataFrame(rows).to_csv(index=False, lineterminator="\n"))
    return meta
