"""Sharing a budget of samples among slices (or strata) by weight, in whole samples.

Light on purpose (numpy only): the augment stage shares its budget among the target slices with it, and the
build stage shares a slice's share among the strata of `build.stratify`, without importing the augmenters.
"""

from __future__ import annotations

import numpy as np


def allocate_budget(priorities: dict[str, float], budget: int, min_share: float = 0.0) -> dict[str, int]:
    """Split `budget` among slices in proportion to priority (largest remainders, ties by name).

    With `min_share` > 0 every slice of positive priority first gets floor(min_share x budget), and the rest is
    shared in proportion to priority: a slice far below its baseline but small in priority (e.g. a channel the
    model half handles) is not left with a handful of samples. Slices of priority <= 0 get nothing either way.
    Raises ValueError when the floors alone would exceed the budget (min_share x slices > 1).
    """
    positive = {k: v for k, v in priorities.items() if v > 0}
    if budget < 0:
        raise ValueError(f"augment budget must be >= 0, got {budget}")
    if not 0.0 <= min_share <= 1.0:
        raise ValueError(f"augment min_share must be in [0, 1], got {min_share!r}")
    if min_share * len(positive) > 1.0 + 1e-9:
        raise ValueError(f"augment min_share {min_share} x {len(positive)} target slices exceeds the whole budget")
    if not positive:
        return {k: 0 for k in priorities}
    floor = int(np.floor(min_share * budget))
    rest = budget - floor * len(positive)
    total = sum(positive.values())
    exact = {k: rest * v / total for k, v in positive.items()}
    counts = {k: int(np.floor(v)) for k, v in exact.items()}
    left = rest - sum(counts.values())
    for k in sorted(exact, key=lambda k: (-(exact[k] - counts[k]), k))[:left]:
        counts[k] += 1
    return {k: counts[k] + floor if k in counts else 0 for k in priorities}
