"""The HTML error-analysis report: self-contained (no network references, PNGs embedded and decodable), names
the top-priority slice, escapes user data, copes with missing parts, and is byte-for-byte deterministic."""

import base64
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from curation.analysis import error_table
from curation.discovery import COLUMNS
from curation.metrics import evaluate_slices
from curation.report import ReportPart, analysis_report

LABELS = ["0", "1", "2", "3"]  # digits: a CSV round trip reads them back as integers
EVIL = "<script>alert(1)</script>"
SPECS = ["condition", "speaker", "tag", "condition & speaker"]
DISCOVERED = COLUMNS


def _pred(seed: int, n: int = 240) -> pd.DataFrame:
    """Synthetic predictions: babble_5db is much weaker than the other conditions; one speaker's name is a
    script tag; three rows per source recording."""
    rng = np.random.default_rng(seed)
    condition = np.array(["clean", "car_0db", "babble_5db"])[np.arange(n) % 3]
    speaker = np.array(["ana", "bo", f"{EVIL}"])[(np.arange(n) // 3) % 3]
    label = rng.choice(LABELS, n)
    wrong = rng.random(n) < np.where(condition == "babble_5db", 0.45, 0.05)
    pred = np.where(wrong, rng.choice(LABELS, n), label)
    return pd.DataFrame(
        {
            "id": [f"s{i:04d}" for i in range(n)],
            "label": label,
            "pred": pred,
            "correct": label == pred,
            "condition": condition,
            "speaker": speaker,
            "source_id": [f"src{i // 3}" for i in range(n)],
            "tag:loud": rng.random(n) < 0.2,
        }
    )


def _discovered(pred: pd.DataFrame) -> pd.DataFrame:
    """A discovered-slices table as `curation.discovery.discover` returns it (hand-made, so these tests do not
    depend on the search itself)."""
    err = ~pred["correct"]
    rows = []
    for name, mask in [
        ("condition=babble_5db", pred["condition"] == "babble_5db"),
        (f"speaker={EVIL} & tag=loud", (pred["speaker"] == EVIL) & pred["tag:loud"]),
    ]:
        rate, rest = float(err[mask].mean()), float(err[~mask].mean())
        rows.append(
            {
                "slice": name,
                "order": name.count("&") + 1,
                "n": int(mask.sum()),
                "clusters": int(mask.sum()),
                "errors": int(err[mask].sum()),
                "error_rate": rate,
                "ci_low": rate - 0.05,
                "ci_high": rate + 0.05,
                "rest_error_rate": rest,
                "lift": rate / rest,
                "diff": rate - rest,
                "p": 1e-6,
                "q": 3e-5,
                "description": f"mostly label '0' <b>{EVIL}</b>",
            }
        )
    return pd.DataFrame(rows)


def _dev() -> ReportPart:
    """The dev part, from a `SliceReport` in memory, with a focus class and discovered slices."""
    pred = _pred(1)
    report = evaluate_slices(pred, SPECS, LABELS, seed=0, n_boot=100, min_size=30, focus="0")
    errors = error_table(report.slices, {"default": 0.97}, len(pred))
    return ReportPart.of(report, errors, _discovered(pred), targets=["condition=babble_5db"], focus="0")


def _test(csv_dir: Path) -> ReportPart:
    """The test part as `curate analyze` builds it: slice tables written to CSV and read back (digit labels
    come back as integers, NaN as empty cells); no focus class, nothing discovered, no targets."""
    pred = _pred(2)
    report = evaluate_slices(pred, SPECS, LABELS, seed=0, n_boot=100)
    tables = {"slices": report.slices, "classes": report.classes, "confusion": report.confusion}
    for k, table in tables.items():
        table.to_csv(csv_dir / f"{k}.csv", index=False)
    tables = {k: pd.read_csv(csv_dir / f"{k}.csv", keep_default_na=False, na_values=[""]) for k in tables}
    errors = error_table(tables["slices"], {"default": 0.97}, len(pred))
    return ReportPart(errors=errors, discovered=pd.DataFrame(columns=list(DISCOVERED)), **tables)


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ReportPart]:
    # test before dev on purpose: the page puts dev first
    return {"test": _test(tmp_path_factory.mktemp("tables")), "dev": _dev()}


@pytest.fixture(scope="module")
def page(parts: dict[str, ReportPart]) -> str:
    return analysis_report(f"Spoken digits {EVIL}", parts, LABELS, top=10)


def test_no_external_references(page: str):
    for needle in ("http://", "https://", 'src="//', "<link", "@import", "url("):
        assert needle not in page.lower()
    srcs = re.findall(r'<img[^>]*\ssrc="([^"]*)"', page)
    assert len(srcs) == 4  # per part: the accuracy figure and the confusion matrix
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    assert len(re.findall(r"<img\b", page)) == len(srcs)


def test_embedded_pngs_decode(page: str):
    for src in re.findall(r'src="data:image/png;base64,([^"]*)"', page):
        with Image.open(io.BytesIO(base64.b64decode(src, validate=True))) as im:
            im.verify()
            assert im.format == "PNG" and im.size[0] > 200 and im.size[1] > 100


def test_names_the_top_priority_slice_dev_first(page: str, parts: dict[str, ReportPart]):
    top = parts["dev"].errors.iloc[1]
    assert top["slice"] == "condition=babble_5db"
    assert "Top priority: condition=babble_5db</b>" in page
    assert f"closing the gap would add {100 * top['priority']:.1f} accuracy points" in page
    assert page.index("<h2>dev</h2>") < page.index("<h2>test</h2>")
    assert 'href="#part-0"' in page and 'id="part-1-errors"' in page  # table of contents


def test_user_data_is_escaped(page: str):
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;" in page  # the discovered slice's description


def test_empty_discovered_and_no_focus(page: str):
    test_section = page[page.index("<h2>test</h2>") :]
    dev_section = page[: page.index("<h2>test</h2>")]
    assert "No slice is significantly weaker than the rest" in test_section
    assert "Errors of class" not in test_section
    assert "Errors of class 0" in dev_section and "false-negative rate [95% CI]" in dev_section
    assert "lift" in dev_section and "3.0e-05" in dev_section


def test_same_inputs_same_bytes(parts: dict[str, ReportPart], page: str):
    again = analysis_report(f"Spoken digits {EVIL}", {"dev": parts["dev"], "test": parts["test"]}, LABELS, top=10)
    assert again.encode() == page.encode()


def test_many_classes_and_bad_inputs():
    labels = [f"c{k:02d}" for k in range(30)]
    rng = np.random.default_rng(0)
    label = rng.choice(labels, 120)
    pred = pd.DataFrame(
        {
            "id": [f"s{i}" for i in range(120)],
            "label": label,
            "pred": label,
            "correct": True,
            "condition": "clean",
            "speaker": "a",
            "source_id": [f"r{i}" for i in range(120)],
        }
    )
    report = evaluate_slices(pred, ["condition"], labels, seed=0, n_boot=20)
    part = ReportPart.of(report, error_table(report.slices, {"default": 0.97}, 120), pd.DataFrame())
    page = analysis_report("many", {"dev": part}, labels)
    assert "at or above its baseline" in page and "counts in the cells" not in page
    with pytest.raises(ValueError, match="no evaluation set"):
        analysis_report("none", {}, labels)
    with pytest.raises(ValueError, match="not among the labels"):
        analysis_report("bad", {"dev": part}, labels[:5])
