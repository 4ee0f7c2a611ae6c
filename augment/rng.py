"""Seeds derived from one root seed, so that every sample gets its own generator.

The same (root seed, keys) always gives the same stream, whatever the order or the process that asks:
this is what makes serial and parallel generation byte-identical. The global RNGs are never touched.
"""

from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(root_seed: int, *keys: object) -> int:
    """A 63-bit seed from a root seed and any keys (sample id, policy name, ...), stable across runs."""
    text = "\x1f".join([str(int(root_seed)), *(str(k) for k in keys)])
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def generator(root_seed: int, *keys: object) -> np.random.Generator:
    """A numpy Generator for one (root seed, keys) combination: PCG64, the stream `np.random.default_rng` gives
    for the same seed, built without its argument checks (two per candidate, so they show)."""
    return np.random.Generator(np.random.PCG64(derive_seed(root_seed, *keys)))
