"""Slices: named subsets of samples, "column=value" for any metadata column (or "all")."""

from __future__ import annotations

import pandas as pd

ALL = "all"


def slice_mask(df: pd.DataFrame, name: str) -> pd.Series:
    """Rows of `df` inside slice `name` (none if its column is absent)."""
    if name == ALL:
        return pd.Series(True, index=df.index)
    column, _, value = name.partition("=")
    if column not in df.columns:
        return pd.Series(False, index=df.index)
    return df[column].astype(str) == value


def slice_names(df: pd.DataFrame, columns: list[str]) -> list[str]:
    """ "all" and every "column=value" present in `df`, in column order then sorted by value."""
    names = [ALL]
    for col in columns:
        if col not in df.columns:
            raise KeyError(f"slice column {col!r} is not in the data; columns: {', '.join(df.columns)}")
        names += [f"{col}={v}" for v in sorted(df[col].astype(str).unique())]
    return names
