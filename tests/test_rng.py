"""Derived seeds and generators: stable, distinct per key, and numpy's default stream for the seed."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from augment.rng import derive_seed, generator


def test_derived_seeds_are_stable_63_bit_and_differ_by_key():
    assert derive_seed(0, "candidate", "condition=dark", 3) == derive_seed(0, "candidate", "condition=dark", 3)
    seeds = {derive_seed(root, *keys) for root in (0, 1) for keys in [("a",), ("b",), ("a", 1), ("a", "1", 2)]}
    assert len(seeds) == 8 and all(0 <= s < 2**63 for s in seeds)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**31), st.text(max_size=8), st.integers(0, 99))
def test_a_generator_gives_numpys_default_stream_for_its_derived_seed(root, name, index):
    ours, default = generator(root, index, name), np.random.default_rng(derive_seed(root, index, name))
    assert ours.bit_generator.state == default.bit_generator.state
    assert ours.random(3).tolist() == default.random(3).tolist()
