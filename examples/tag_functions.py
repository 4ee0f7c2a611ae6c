"""Example tag functions: register them in params.yaml to see how the model does on the samples they tag.

A tag function takes one sample, a dict of its fields (id, path, label, condition, metadata, ...) plus "x",
the loaded media as the pipeline reads it (`curation.conditions.load_sample`):
- audio: float32 mono samples in [-1, 1] at the data set's sample rate, shape (n,);
- images: uint8 pixels, shape (H, W) for `media.channels: 1` or (H, W, 3) for 3.
It returns a bool (a numpy bool is fine); True puts the sample in the slice `tag=<name>` of the error
analysis. `x` is read-only: compute on copies. Register a function by tag name, as "path/to/file.py:function"
(relative to the repository) or "package.module:function":

    tags:
      functions:
        quiet: examples/tag_functions.py:quiet       # audio data sets
        low_ink: examples/tag_functions.py:low_ink   # image data sets

Stress-test copies are tagged from their own (transformed) media, so `quiet` may hold for a clean
recording but not for its copy with babble noise added.
"""

from __future__ import annotations

from typing import Any

import numpy as np

QUIET_DBFS = -30.0  # RMS level below which a recording counts as quiet (0 dBFS = a full-scale square wave)
INK_LEVEL = 64  # a pixel this far (of 255) from the background level is ink
LOW_INK_SHARE = 0.05  # below this share of ink pixels, an image has little to recognise


def quiet(sample: dict[str, Any]) -> bool:
    """True when the recording's RMS level is below QUIET_DBFS: faint speech is a classic weak slice."""
    x = np.asarray(sample["x"], dtype=np.float64)
    if x.size == 0:
        return True
    rms = float(np.sqrt(np.mean(np.square(x))))
    return rms < 10.0 ** (QUIET_DBFS / 20.0)  # compare levels, not logs: silence (rms 0) needs no special case


def low_ink(sample: dict[str, Any]) -> bool:
    """True when fewer than LOW_INK_SHARE of the pixels differ from the background by INK_LEVEL or more:
    a faint or tiny stroke. The background is the median grey, so dark-on-light and light-on-dark both work."""
    x = np.asarray(sample["x"], dtype=np.float64)
    grey = x.mean(axis=2) if x.ndim == 3 else x
    if grey.size == 0:
        return True
    background = float(np.median(grey))
    share = float(np.mean(np.abs(grey - background) >= INK_LEVEL))
    return share < LOW_INK_SHARE
