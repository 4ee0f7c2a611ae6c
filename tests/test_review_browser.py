"""The review page in a real browser: headless Chromium (Debian's `chromium`) driven by Playwright clicks and
types through a small queue by keyboard and mouse, then the store is checked decision by decision.

Runs wherever Chromium and Playwright are installed (`.ci/run` installs both); skipped elsewhere, except in CI
(CI=true), where a missing browser fails the test."""

from __future__ import annotations

import os
import shutil

import pytest

from curation.config import dataset_config, load_params
from curation.layout import Layout
from curation.review.app import create_app
from curation.review.queue import ReviewQueue
from curation.review.store import ReviewStore
from tests.review_project import DATASET, EVIL, make_project, serving

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - the dev extra installs it
    sync_playwright = None

if (CHROMIUM is None or sync_playwright is None) and os.environ.get("CI"):
    pytest.fail("CI must install chromium and playwright for the browser test", pytrace=False)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or sync_playwright is None, reason="needs the chromium package and playwright"
)


@pytest.fixture()
def browser_page(tmp_path, monkeypatch):
    monkeypatch.chdir(make_project(tmp_path))
    cfg = dataset_config(load_params("params.yaml"), DATASET)
    store = ReviewStore(Layout(DATASET).review_store)
    app = create_app(ReviewQueue.load(cfg, Layout(DATASET)), store, dataset=DATASET, media_cfg=cfg["media"], seed=3)
    dialogs: list[str] = []
    with serving(app) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(base)
        yield page, store, dialogs, errors
        browser.close()


def decided(store: ReviewStore) -> list[tuple[str, str, str, str]]:
    cur = store.current()
    return [(r.sample_id, r.labeler, r.decision, r.label) for r in cur.itertuples()]


def test_a_labeler_decides_a_queue_by_keyboard_and_mouse(browser_page, tmp_path):
    page, store, dialogs, errors = browser_page
    expect(page.locator("#need-name")).to_be_visible()
    page.locator("#labeler").fill("ann")
    page.locator("#labeler").press("Enter")
    sample = page.locator("#sample-id")
    expect(sample).to_have_text("aug/c0")
    # Names with HTML in them show as text: the file name, the reason.
    expect(page.locator("#file")).to_have_text(f"{EVIL}_0.wav")
    expect(page.locator("#reason")).to_contain_text(EVIL)
    assert page.locator("#main img[src='x']").count() == 0
    expect(page.locator("#progress")).to_have_text("0 of 6 decided in this filter · 0 of 6 in all")

    page.keyboard.press("n")
    page.keyboard.type(f"#breathy {EVIL}")
    page.keyboard.press("Escape")
    page.keyboard.press("a")  # accept aug/c0
    expect(sample).to_have_text("aug/c1")
    page.keyboard.press("2")  # relabel aug/c1 as "2" by its digit
    expect(sample).to_have_text("aug/c2")
    page.get_by_role("button", name="Reject").click()  # by mouse
    expect(sample).to_have_text("aug/c3")
    page.keyboard.press("u")
    expect(sample).to_have_text("aug/c4")
    page.keyboard.press("z")  # undo the unsure: back on aug/c3
    expect(sample).to_have_text("aug/c3")
    expect(page.locator("#status")).to_have_text("Undone: unsure on aug/c3")
    page.keyboard.press("r")  # relabel by name
    page.locator("#relabel-input").fill("1")
    page.locator("#relabel-input").press("Enter")
    expect(sample).to_have_text("aug/c4")
    page.locator("#relabel button[data-label='1']").click()  # relabel aug/c4 by mouse
    expect(page.locator("#status")).to_have_text("Saved: accept (1) for aug/c4")  # 1 is its proposed label

    page.locator("#filter-reason").select_option("label issue")
    expect(sample).to_have_text("2/src_5.wav")
    expect(page.locator("#suggested")).to_have_text("1")
    page.keyboard.press("1")  # take the model's suggestion
    expect(page.locator("#progress")).to_have_text("1 of 1 decided in this filter · 6 of 6 in all")
    page.screenshot(path=str(tmp_path / "review.png"), full_page=True)

    assert decided(store) == [
        ("2/src_5.wav", "ann", "relabel", "1"),
        ("aug/c0", "ann", "accept", "0"),
        ("aug/c1", "ann", "relabel", "2"),
        ("aug/c2", "ann", "reject", "2"),
        ("aug/c3", "ann", "relabel", "1"),
        ("aug/c4", "ann", "accept", "1"),
    ]
    assert store.current().set_index("sample_id").loc["aug/c0", "note"] == f"#breathy {EVIL}"
    assert dialogs == [] and errors == []
    png = (tmp_path / "review.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def test_a_refused_label_shows_the_servers_reason(browser_page):
    page, store, _, errors = browser_page
    page.locator("#labeler").fill("bo")
    page.locator("#labeler").press("Enter")
    expect(page.locator("#sample-id")).to_have_text("aug/c0")
    page.keyboard.press("r")
    page.locator("#relabel-input").fill("<b>9</b>")
    page.locator("#relabel-input").press("Enter")
    expect(page.locator("#status")).to_have_text("label '<b>9</b>' is not in the label set (0, 1, 2)")
    assert store.history().empty and errors == []
