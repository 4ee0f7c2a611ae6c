"""Checks on the listing itself, before any file is read: ids, labels, paths and spreadsheet-unsafe cells."""

from __future__ import annotations

from collections import Counter

import pandas as pd

from curation.checks.findings import Check, Context, Finding, register
from curation.ingest import STAGE_COLUMNS
from curation.io import safe_cell


@register
class PathCheck(Check):
    """A path that is missing, absolute, leads outside the data root, names no file, or cannot be stored."""

    name = "path"
    severity = "error"

    def find_issues(self, table: pd.DataFrame, ctx: Context) -> list[Finding]:
        out = []
        for row in table.to_dict("records"):
            reason = row.get("listing_error") or row.get("path_error") or ""
            if reason:
                out.append(self.finding(row, reason))
        return out


@register
class DuplicateId(Check):
    """Several rows with one id: later stages could not tell the samples apart."""

    name = "duplicate_id"
    severity = "error"

    def find_issues(self, table: pd.DataFrame, ctx: Context) -> list[Finding]:
        counts = Counter(table["id"])
        out = []
        for row in table.to_dict("records"):
            if not row["id"]:
                out.append(self.finding(row, "id is missing"))
            elif counts[row["id"]] > 1:
                out.append(self.finding(row, f"duplicate id: {counts[row['id']]} rows share it"))
        return out


@register
class LabelCheck(Check):
    """A label that is missing or outside the data set's label set."""

    name = "label"
    severity = "error"

    def find_issues(self, table: pd.DataFrame, ctx: Context) -> list[Finding]:
        allowed = None if ctx.labels is None else [str(x) for x in ctx.labels]
        name = ctx.extra.get("label_name", "label")
        out = []
        for row in table.to_dict("records"):
            if not row["label"]:
                out.append(self.finding(row, f"{name} is missing"))
            elif allowed is not None and row["label"] not in allowed:
                out.append(self.finding(row, f"label {row['label']!r} is not one of the labels {allowed}"))
        return out


@register
class FormulaCell(Check):
    """A text cell that a spreadsheet would run as a formula (CSV injection). Reports neutralise such cells;
    the finding tells the data owner where they are."""

    name = "formula_cell"
    severity = "warning"

    def find_issues(self, table: pd.DataFrame, ctx: Context) -> list[Finding]:
        columns = [c for c in table.columns if c not in STAGE_COLUMNS and pd.api.types.is_string_dtype(table[c])]
        out = []
        for row in table.to_dict("records"):
            for col in columns:
                value = row[col]
                if isinstance(value, str) and safe_cell(value) != value:
                    shown = value if len(value) <= 40 else value[:37] + "..."
                    reason = f"column {col!r} starts with {value[0]!r} ({shown!r}): a spreadsheet would run it"
                    out.append(self.finding(row, reason + " as a formula"))
        return out
