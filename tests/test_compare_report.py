"""The comparison's HTML report: offline, escaped, with intervals, confusion matrices and changed samples."""

import io

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from PIL import Image

from curation.compare import compare_versions, rank_by_change
from curation.compare_report import comparison_html
from curation.revisions import RevisionError, VersionData, VersionRef

EVIL = "<script>alert(1)</script>"
IDS = [EVIL, "s1", "s2", "s3", "s4", "s5"]


def _version(rev: str, correct: list[bool], card: dict | None, budget: int) -> VersionData:
    labels = ["x", "y", "x", "y", "x", "y"]
    pred = pd.DataFrame(
        {
            "id": IDS,
            "path": [f"media/{k}.bin" for k in range(len(IDS))],
            "sha256": "0" * 64,
            "label": labels,
            "pred": [lab if c else ("y" if lab == "x" else "x") for lab, c in zip(labels, correct, strict=True)],
            "correct": correct,
            "condition": ["clean", "clean", "clean", "car", "car", "car"],
        }
    )
    params = {"seed": 1, "augment": {"budget": budget}, "note": EVIL}
    return VersionData(VersionRef(rev, "v2"), f"{rev}0" * 10, pred, params, card)


def _page(modality: str, read_sample) -> str:
    versions = [
        _version("base", [False, True, True, True, False, True], None, 10),
        _version("next", [True, True, True, False, True, True], {"content_md5": "abc", "changes": {"why": EVIL}}, 20),
    ]
    preds = {v.ref.name: v.predictions for v in versions}
    names = list(preds)
    table = rank_by_change(compare_versions(preds, ["condition"], 0, ["x", "y"]), names)
    return comparison_html(
        "toy", table, versions, ["x", "y"], modality, {"channels": 1, "sample_rate": 8000}, read_sample,
        protected=["condition=car"], regressed=[("condition=car", "next:v2")], failures=[f"slice {EVIL} regressed"],
    )  # fmt: skip


def _png(path: str, sha256: str | None) -> bytes:
    if path == "media/4.bin":
        raise RevisionError(f"{path} does not exist at revision 'next' {EVIL}")
    buf = io.BytesIO()
    Image.fromarray(np.full((4, 4), 200, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def page() -> str:
    return _page("image", _png)


def test_the_page_loads_nothing_from_the_network(page):
    lowered = page.lower()
    for needle in ("http://", "https://", 'src="//', "<link", "@import", "url(", "<script"):
        assert needle not in lowered


def test_data_from_the_versions_is_escaped(page):
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the sample id, the card, params, the failure
    assert "<b>&lt;script&gt;alert(1)&lt;/script&gt;</b><br>label x" in page  # the changed sample's card
    assert "no media: media/4.bin does not exist at revision &#x27;next&#x27; &lt;script&gt;" in page


def test_the_page_shows_table_figures_and_changed_samples(page):
    assert '<div class="fail"><b>Audit gate failed</b>' in page
    assert '<tr class="protected"><td class="text">condition=car (protected)</td>' in page
    assert 'class="num regression"' in page
    # bars with intervals, one confusion matrix per version, thumbnails of the changed samples found on "disk"
    assert page.count('alt="per-slice accuracy of every version with 95% intervals"') == 1
    assert page.count('alt="confusion matrix of ') == 2
    # clean: <script> improves (+1/3); all: <script> and s4 improve, s3 worsens (+1/6); car: s4 up, s3 down (0).
    # Nothing significant on 3 or 6 samples: sorted by the largest change.
    sections = dict(s.split("</h3>", 1) for s in page.split("<h3>")[1:4])
    assert list(sections) == ["condition=clean", "all", "condition=car"]
    assert "wrong → right: 2</h4>" in sections["all"] and "right → wrong: 1</h4>" in sections["all"]
    assert (
        "wrong → right: 1</h4>" in sections["condition=clean"]
        and "right → wrong: 0</h4>" in sections["condition=clean"]
    )
    assert sections["all"].count('<img src="data:image/png;base64,') == 2  # s4's media is missing, shown as such
    assert 'base:v2: <span class="bad">y ✗</span><br>next:v2: <span class="ok">x ✓</span>' in sections["all"]
    # versions: the second has a card, and the params that differ are listed
    assert "no version card at this revision" in page and "content md5 <code>abc</code>" in page
    assert '<tr><td class="text">augment.budget</td><td class="text">10</td><td class="text">20</td></tr>' in page


def test_audio_samples_are_embedded_as_players():
    def wav(path: str, sha256: str | None) -> bytes:
        buf = io.BytesIO()
        sf.write(buf, np.zeros(80, dtype=np.float32), 8000, format="WAV", subtype="PCM_16")
        return buf.getvalue()

    page = _page("audio", wav)
    assert page.count('<audio controls src="data:audio/wav;base64,') >= 3
