"""Budget allocation and source choice for augmentation candidates."""

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from curation.candidates import allocate_budget, pick_sources


def test_budget_follows_priorities_with_largest_remainders():
    assert allocate_budget({"a": 0.3, "b": 0.1, "c": 0.0}, 10) == {"a": 8, "b": 2, "c": 0}
    assert allocate_budget({"a": 1.0, "b": 1.0, "c": 1.0}, 10) == {"a": 4, "b": 3, "c": 3}


def test_no_positive_priority_gets_no_budget():
    assert allocate_budget({"a": 0.0}, 50) == {"a": 0}


@settings(max_examples=50, deadline=None)
@given(
    st.dictionaries(st.text(min_size=1, max_size=4), st.floats(0.001, 1.0), min_size=1, max_size=6),
    st.integers(0, 5000),
)
def test_budget_is_spent_exactly(priorities, budget):
    assert sum(allocate_budget(priorities, budget).values()) == budget


def test_sources_are_seeded_and_cycle_over_the_training_set():
    train = pd.DataFrame({"id": ["s3", "s1", "s2"]})
    first = pick_sources(train, 7, seed=1, target="condition=dark")
    assert first == pick_sources(train.iloc[::-1], 7, seed=1, target="condition=dark")
    assert sorted(first[:3]) == ["s1", "s2", "s3"] and first[3:6] == first[:3]
    assert first != pick_sources(train, 7, seed=2, target="condition=dark")
