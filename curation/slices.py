"""Slices: named subsets of samples.

A slice name is "all", one term "column=value", or a conjunction of terms joined by " & "
("condition=car_0db & speaker=theo"). Tags are boolean columns named "tag:<name>" (curation/tags.py);
the term "tag=<name>" selects the rows where that column is true.

A slice *spec* in params says which slices to measure: a column name ("speaker": one slice per value),
"tag" (one slice per tag present), or two of those joined by " & " (one slice per pair of values present).
"""

from __future__ import annotations

import itertools

import pandas as pd

ALL = "all"
AND = " & "
TAG = "tag"
TAG_PREFIX = "tag:"


def terms(name: str) -> list[tuple[str, str]]:
    """The (column, value) terms of a slice name; [] for "all". Raises ValueError on a term without "="."""
    if name == ALL:
        return []
    out = []
    for part in name.split(AND):
        column, sep, value = part.strip().partition("=")
        if not sep or not column:
            raise ValueError(f"slice {name!r}: term {part!r} is not of the form column=value")
        out.append((column, value))
    return out


def as_text(values: pd.Series) -> pd.Series:
    """Values as the text a slice name holds; a missing value is "nan" (pandas 3 keeps NaN through
    `astype(str)`, which would drop such rows from every slice)."""
    return values.astype(object).where(values.notna(), "nan").map(str)


def tag_mask(df: pd.DataFrame, name: str) -> pd.Series:
    """Rows of `df` that carry tag `name` (none when the tag column is absent; a missing cell is False)."""
    column = TAG_PREFIX + name
    return df[column].fillna(False).astype(bool) if column in df.columns else pd.Series(False, index=df.index)


def _term_mask(df: pd.DataFrame, column: str, value: str) -> pd.Series:
    if column == TAG:
        return tag_mask(df, value)
    if column not in df.columns:
        return pd.Series(False, index=df.index)
    return as_text(df[column]) == value


def slice_mask(df: pd.DataFrame, name: str) -> pd.Series:
    """Rows of `df` inside slice `name` (none if one of its columns or tags is absent)."""
    mask = pd.Series(True, index=df.index)
    for column, value in terms(name):
        mask &= _term_mask(df, column, value)
    return mask


def tag_names(df: pd.DataFrame) -> list[str]:
    """The tags of `df` (its "tag:<name>" columns), sorted."""
    return sorted(c[len(TAG_PREFIX) :] for c in df.columns if c.startswith(TAG_PREFIX))


def _column_terms(df: pd.DataFrame, column: str) -> list[str]:
    """Every term of one spec column present in `df`: "column=value" per value, or "tag=<name>" per tag that
    at least one row has."""
    if column == TAG:
        return [f"{TAG}={t}" for t in tag_names(df) if tag_mask(df, t).any()]
    if column not in df.columns:
        raise KeyError(f"slice column {column!r} is not in the data; columns: {', '.join(map(str, df.columns))}")
    return [f"{column}={v}" for v in sorted(as_text(df[column]).unique())]


def slice_names(df: pd.DataFrame, specs: list[str]) -> list[str]:
    """ "all", then the slices of each spec in spec order: a column's values sorted as text, and for a
    conjunction every pair of its two columns' terms that holds at least one row."""
    names = [ALL]
    for spec in specs:
        columns = [c.strip() for c in spec.split("&")]
        if len(columns) == 1:
            names += _column_terms(df, columns[0])
        elif len(columns) == 2:
            left, right = (_column_terms(df, c) for c in columns)
            for a, b in itertools.product(left, right):
                name = a + AND + b
                if slice_mask(df, name).any():
                    names.append(name)
        else:
            raise ValueError(f"slice spec {spec!r}: at most two columns can be joined with '&'")
    return names
