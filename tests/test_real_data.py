"""The validate stage on the real data sets beside the checkout (../shared/data), through the example params.

Each finds what is known to be wrong in its data set (../shared/data/README.md). Skipped, saying so, when the
folder is absent; the data is read where it is, never copied.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import pandas as pd
import pytest
import yaml

from curation.ingest import list_source
from curation.validate import Validation, validate

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
pytestmark = pytest.mark.shared_data


def _validate(name: str) -> tuple[Validation, pd.DataFrame]:
    """Validate the example data set `name` as its params block says (in quarantine mode); and its listing."""
    if not SHARED.is_dir():
        pytest.skip(f"real data not found at {SHARED}: the {name} validation is skipped")
    block = yaml.safe_load("datasets:\n" + (ROOT / "examples" / f"{name}.params.yaml").read_text())["datasets"][name]
    source = {k: str(SHARED.parent / "data" / Path(v).relative_to("../shared/data")) if k in ("root", "manifest")
              else v for k, v in block["source"].items()}  # fmt: skip
    settings = block["validate"]
    listing, _ = list_source(source, block["modality"])
    result = validate(listing, source["root"], block["modality"], block["media"], labels=block["labels"],
                      settings=settings["checks"], on_error=block["on_error"],
                      split_column=settings["split_column"], workers=2)  # fmt: skip
    report = result.report
    assert report["seen"] == len(listing) == report["kept"] + report["quarantined"] and report["reconciled"]
    return result, listing


def _cross_pairs(table: pd.DataFrame, column: str) -> dict[tuple[str, str], int]:
    """Pairs of samples with identical decoded content, counted by the (sorted) pair of `column` values."""
    pairs: dict[tuple[str, str], int] = {}
    for _, group in table.groupby("content_hash"):
        for a, b in combinations(group[column].tolist(), 2):
            key = tuple(sorted((a, b)))
            pairs[key] = pairs.get(key, 0) + 1
    return pairs


def test_roman_duplicates_across_train_val_and_label_book_are_found_and_the_leaks_quarantined() -> None:
    result, _ = _validate("roman")
    table = result.table.rename(columns={"source:split": "given_split"})
    exact = set(result.findings.loc[result.findings["check"] == "exact_duplicate", "id"])
    pairs = _cross_pairs(table[table["id"].isin(exact)], "given_split")
    assert pairs[("train", "val")] == 49 and pairs[("label_book", "val")] == 3
    leaks = result.findings[result.findings["check"] == "leakage"]
    exact_leaks = leaks[~leaks["reason"].str.startswith("looks like")]
    assert len(exact_leaks) == 52 and set(table.set_index("id").loc[exact_leaks["id"], "given_split"]) == {"val"}
    assert set(leaks["id"]) <= set(result.table.loc[result.table["status"] == "quarantined", "id"])


def test_neu_det_duplicate_pair_is_found() -> None:
    result, _ = _validate("neu_det")
    exact = result.findings[result.findings["check"] == "exact_duplicate"]
    a, b = sorted(exact["id"])
    assert dict(zip(exact["id"], exact["related"], strict=True)) == {a: b, b: a}
    assert result.report["quarantined"] == 0


def test_esc50_mostly_silent_clips_are_reported() -> None:
    result, listing = _validate("esc50")
    silent = set(result.findings.loc[result.findings["check"] == "silence", "id"])
    known = set(listing.loc[listing["silent_frac"].astype(float) > 0.3, "id"])
    assert len(known) == 24 and known <= silent and len(silent - known) <= 1
