"""Sharing a budget among slices by priority, in whole samples."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curation.budget import allocate_budget


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


def test_min_share_gives_every_positive_slice_a_floor_and_shares_the_rest_by_priority():
    # floor(0.1 x 100) = 10 for a and b; the other 80 by priority 6:1 -> 68.6 and 11.4 -> 69 and 11; c (0) gets 0
    assert allocate_budget({"a": 0.6, "b": 0.1, "c": 0.0}, 100, min_share=0.1) == {"a": 79, "b": 21, "c": 0}
    assert allocate_budget({"a": 0.6, "b": 0.1}, 100, min_share=0.0) == allocate_budget({"a": 0.6, "b": 0.1}, 100)
    # floor(0.15 x 7) = 1 each; the remaining 4 by priority 2.4 / 0.8 / 0.8 -> 2, 1, 1 (largest remainders)
    assert allocate_budget({"a": 3.0, "b": 1.0, "c": 1.0}, 7, min_share=0.15) == {"a": 3, "b": 2, "c": 2}
    assert allocate_budget({"a": 1.0, "b": 1.0}, 10, min_share=0.5) == {"a": 5, "b": 5}


def test_min_share_that_the_budget_cannot_pay_is_refused():

    with pytest.raises(ValueError, match="exceeds the whole budget"):
        allocate_budget({"a": 1.0, "b": 1.0, "c": 1.0}, 100, min_share=0.4)
    with pytest.raises(ValueError, match=r"min_share must be in \[0, 1\]"):
        allocate_budget({"a": 1.0}, 100, min_share=-0.1)


@settings(max_examples=50, deadline=None)
@given(
    st.dictionaries(st.text(min_size=1, max_size=4), st.floats(0.001, 1.0), min_size=1, max_size=6),
    st.integers(0, 5000),
    st.floats(0.0, 1.0),
)
def test_budget_with_a_min_share_is_spent_exactly_and_every_slice_gets_its_floor(priorities, budget, share):
    share = min(share, 1.0 / len(priorities))
    got = allocate_budget(priorities, budget, min_share=share)
    assert sum(got.values()) == budget
    assert min(got.values()) >= int(share * budget)
