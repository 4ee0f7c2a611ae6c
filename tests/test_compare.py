"""Comparing versions on the same test samples: hand-computed deltas and McNemar p-values."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from curation.cli import main
from curation.compare import CompareError, audit, compare_versions, rank_by_change, to_markdown
from tests.test_revisions import commit, dvc_repo, git

LABELS = ["x", "y"]


def _pred(correct, condition):
    return pd.DataFrame(
        {
            "id": [f"s{i}" for i in range(len(correct))],
            "label": "x",
            "pred": ["x" if c else "y" for c in correct],
            "correct": correct,
            "condition": condition,
        }
    )


def test_hand_computed_comparison():
    cond = ["clean"] * 4 + ["car"] * 4
    v1 = _pred([True, True, True, True, True, True, False, False], cond)
    v2 = _pred([True, True, True, False, True, True, True, True], cond)
    table = compare_versions({"v1": v1, "v2": v2}, ["condition"], 0, LABELS, targets=["condition=car"]).set_index(
        "slice"
    )
    assert table.loc["all", "acc_v1"] == pytest.approx(6 / 8) and table.loc["all", "acc_v2"] == pytest.approx(7 / 8)
    assert table.loc["condition=car", "delta_v2"] == pytest.approx(0.5)
    assert table.loc["condition=clean", "delta_v2"] == pytest.approx(-0.25)
    # discordant pairs on car: 2 improved, 0 worsened -> exact two-sided binomial p = 0.5
    assert table.loc["condition=car", "p_v2"] == pytest.approx(0.5)
    assert table.loc["all", "p_v2"] == pytest.approx(1.0)
    assert bool(table.loc["condition=car", "targeted"]) and not bool(table.loc["all", "targeted"])
    assert not table["significant_v2"].any()
    md = to_markdown(table.reset_index(), ["v1", "v2"])
    assert "| *condition=car | 4 | 0.500" in md


def test_different_test_sets_are_refused():
    v1 = _pred([True, False], ["a", "a"])
    v2 = _pred([True, False, True], ["a", "a", "a"])
    with pytest.raises(CompareError, match="not evaluated on the same test samples"):
        compare_versions({"v1": v1, "v2": v2}, ["condition"], 0, LABELS)


def _regression(n_worse: int, n: int = 60) -> pd.DataFrame:
    """A comparison where v2 gets `n_worse` of the `n` clean samples wrong that v1 got right."""
    v1 = _pred([True] * n, ["clean"] * n)
    v2 = _pred([i >= n_worse for i in range(n)], ["clean"] * n)
    return compare_versions({"v1": v1, "v2": v2}, ["condition"], 0, LABELS)


def test_audit_gate_fails_on_a_significant_regression_beyond_tolerance():
    failures = audit(_regression(12), ["v1", "v2"], ["condition=clean"], tolerance=0.05)
    assert len(failures) == 1
    assert failures[0].startswith("protected slice 'condition=clean' regressed in v2: accuracy 1.000 -> 0.800")
    assert "beyond the tolerance 0.05" in failures[0]


def test_audit_gate_passes_a_drop_within_tolerance_or_not_significant():
    assert audit(_regression(12), ["v1", "v2"], ["condition=clean"], tolerance=0.25) == []  # within tolerance
    assert audit(_regression(2), ["v1", "v2"], ["condition=clean"], tolerance=0.0) == []  # 2 of 60: p = 0.5


def test_audit_gate_refuses_an_unknown_protected_slice_and_a_negative_tolerance():
    assert audit(_regression(0), ["v1", "v2"], ["condition=clena"], 0.05) == [
        "protected slice 'condition=clena' is not in the comparison"
    ]
    with pytest.raises(CompareError, match="tolerance"):
        audit(_regression(0), ["v1", "v2"], [], -0.1)


def test_relabeled_or_repeated_test_samples_are_refused():
    v1 = _pred([True, False], ["a", "a"])
    relabeled = re.escape("versions v1 and v2 give 1 test sample(s) different labels (e.g. 's1')")
    with pytest.raises(CompareError, match=relabeled):
        compare_versions({"v1": v1, "v2": v1.assign(label=["x", "y"])}, ["condition"], 0, LABELS)
    twice = pd.concat([v1, v1])
    with pytest.raises(CompareError, match=re.escape("version v1: 2 id(s) appear twice (e.g. 's0', 's1')")):
        compare_versions({"v1": twice, "v2": twice}, ["condition"], 0, LABELS)


def test_rank_by_change_puts_the_largest_significant_change_first():
    table = pd.DataFrame(
        {
            "slice": ["all", "a", "b", "c", "d"],
            "delta_v2": [0.1, -0.4, 0.5, 0.0, 0.2],
            "significant_v2": [True, True, False, False, False],
            "delta_v3": [0.0, 0.0, 0.0, -0.2, 0.3],
            "significant_v3": [False, False, False, False, True],
        }
    )
    # significant: a (0.4), d (0.3), all (0.1); then the rest by their largest change: b (0.5), c (0.2)
    assert rank_by_change(table, ["v1", "v2", "v3"])["slice"].tolist() == ["a", "d", "all", "b", "c"]


# ------------------------------------------------------------------------ `curate compare` across revisions

HAND_IDS = [f"s{i}" for i in range(8)]
HAND_CONDITION = ["clean"] * 4 + ["car"] * 4
# Which of the 8 test samples each version gets right (s0-s3 clean, s4-s7 car):
V1 = [0, 0, 0, 0, 1, 1, 0, 0]  # clean 0/4, car 2/4, all 2/8
V2 = [1, 1, 0, 0, 1, 0, 1, 0]  # clean 2/4, car 2/4, all 4/8
V3 = [1, 1, 1, 1, 1, 1, 1, 1]  # every sample right


def _hand_pred(correct: list[int], ids: list[str] = HAND_IDS) -> pd.DataFrame:
    labels = ["x" if i % 2 == 0 else "y" for i in range(len(ids))]
    wrong = {"x": "y", "y": "x"}
    return pd.DataFrame(
        {
            "id": ids,
            "path": [f"data/sources/hand/{i}.png" for i in ids],
            "label": labels,
            "pred": [lab if c else wrong[lab] for lab, c in zip(labels, correct, strict=True)],
            "correct": [bool(c) for c in correct],
            "condition": (HAND_CONDITION * 3)[: len(ids)],
        }
    )


def _save(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path)


def _revision_a(root: Path) -> None:
    """Tag a: hand v1 and v2, regress v1 = v2 (every clean sample right), differ v1 = v2 (ids s0-s3)."""
    block = {"modality": "image", "source": {"kind": "csv", "root": "data/sources/hand"}, "media": {"channels": 1},
             "split": {}, "train": {}, "labels": ["x", "y"], "slices": ["condition"]}  # fmt: skip
    params = {
        "seed": 5,
        "datasets": {
            "hand": block | {"audit": {"protected": ["condition=car"], "tolerance": 0.0}},
            "regress": block | {"audit": {"protected": ["condition=clean"], "tolerance": 0.02}},
            "differ": block | {"audit": {"protected": [], "tolerance": 0.0}},
        },
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    for i in HAND_IDS:  # a 4x4 grey image per hand sample: the report shows thumbnails
        path = root / f"data/sources/hand/{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((4, 4), 30 * int(i[1:]), dtype=np.uint8)).save(path)
    _save(_hand_pred(V1), root / "data/hand/v1/predictions_test.parquet")
    _save(_hand_pred(V2), root / "data/hand/v2/predictions_test.parquet")
    (root / "data/hand/targets.json").write_text('[{"slice": "condition=clean"}]')
    regress_ids = [f"r{i:02d}" for i in range(24)]
    for version in ("v1", "v2"):
        _save(_hand_pred([1] * 24, regress_ids), root / f"data/regress/{version}/predictions_test.parquet")
        _save(_hand_pred([1, 0, 1, 0], HAND_IDS[:4]), root / f"data/differ/{version}/predictions_test.parquet")


def _revision_b(root: Path) -> None:
    """Tag b: hand v2 = V3; regress v2 gets 10 of its 16 clean samples wrong; differ v2 has s9 for s3."""
    _save(_hand_pred(V3), root / "data/hand/v2/predictions_test.parquet")
    regress_ids = [f"r{i:02d}" for i in range(24)]
    clean = [HAND_CONDITION[i % 8] == "clean" for i in range(24)]  # r00-r03, r08-r11, r16-r19: 12 clean
    worse = [0 if c and k < 10 else 1 for k, c in zip(np.cumsum(clean) - 1, clean, strict=True)]
    _save(_hand_pred(worse, regress_ids), root / "data/regress/v2/predictions_test.parquet")
    _save(_hand_pred([1, 0, 1, 0], ["s0", "s1", "s2", "s9"]), root / "data/differ/v2/predictions_test.parquet")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    dvc_repo(root)
    commit(root, _revision_a, "a")
    commit(root, _revision_b, "b")
    return root


def test_compare_three_revisions_gives_the_hand_computed_table(project, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(project)
    assert main(["compare", "hand", "a:v1", "a", "b", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "compare.json").read_text())
    assert [v["name"] for v in report["versions"]] == ["a:v1", "a:v2", "b:v2"]
    assert report["versions"][2]["commit"] == git(project, "rev-parse", "b")
    rows = {r["slice"]: r for r in report["slices"]}
    # all: 2/8, 4/8, 8/8. v2 vs v1: a_only s5, b_only s0 s1 s6 -> +2/8, McNemar 3 of 4: p = 10/16 = 0.625.
    # v3 vs v1: 6 improved, none worse -> +6/8, p = 2 / 2^6 = 0.03125: the only significant change.
    assert [rows["all"][f"acc_{v}"] for v in ("a:v1", "a:v2", "b:v2")] == [0.25, 0.5, 1.0]
    assert (rows["all"]["delta_a:v2"], rows["all"]["p_a:v2"]) == (0.25, pytest.approx(0.625))
    assert (rows["all"]["delta_b:v2"], rows["all"]["p_b:v2"]) == (0.75, pytest.approx(0.03125))
    # clean: 0/4, 2/4, 4/4; v2: 2 improved -> +0.5, p = 2/4 = 0.5; v3: 4 improved -> +1.0, p = 2/16 = 0.125.
    clean = rows["condition=clean"]
    assert [clean[f"acc_{v}"] for v in ("a:v1", "a:v2", "b:v2")] == [0.0, 0.5, 1.0]
    assert (clean["delta_a:v2"], clean["p_a:v2"], clean["delta_b:v2"], clean["p_b:v2"]) == (0.5, 0.5, 1.0, 0.125)
    # car: 2/4, 2/4, 4/4; v2: s5 lost, s6 gained -> 0, p = 1; v3: 2 improved -> +0.5, p = 0.5.
    car = rows["condition=car"]
    assert [car[f"acc_{v}"] for v in ("a:v1", "a:v2", "b:v2")] == [0.5, 0.5, 1.0]
    assert (car["delta_a:v2"], car["p_a:v2"], car["delta_b:v2"], car["p_b:v2"]) == (0.0, 1.0, 0.5, 0.5)
    significant = {(s, v) for s, r in rows.items() for v in ("a:v2", "b:v2") if r[f"significant_{v}"]}
    assert significant == {("all", "b:v2")}
    # intervals: all right (wrong) on k independent samples -> exact [0.025^(1/k), 1] ([0, 1 - 0.025^(1/k)])
    assert (clean["ci_low_b:v2"], clean["ci_high_b:v2"]) == (pytest.approx(0.025**0.25), 1.0)
    assert (clean["ci_low_a:v1"], clean["ci_high_a:v1"]) == (0.0, pytest.approx(1 - 0.025**0.25))
    assert rows["all"]["ci_low_b:v2"] == pytest.approx(0.025**0.125)
    # every clean sample improves in v3: each bootstrap replicate of the delta is +1
    assert (clean["delta_low_b:v2"], clean["delta_high_b:v2"]) == (1.0, 1.0)
    # all, v3: replicates k/8 with k ~ Binomial(8, 3/4): P(k <= 3) = 0.027, P(k = 8) = 0.10
    assert 0.375 <= rows["all"]["delta_low_b:v2"] <= 0.5 and rows["all"]["delta_high_b:v2"] == 1.0
    # sorted by the largest significant change (all), then by the largest change: clean (1.0), car (0.5)
    assert list(rows) == ["all", "condition=clean", "condition=car"]
    md = (tmp_path / "compare.md").read_text()
    assert md == capsys.readouterr().out.split(f"hand: {tmp_path}")[0].rstrip("\n") + "\n"
    lines = md.splitlines()
    assert lines[:5] == [
        "# hand: test accuracy per slice, a:v1 vs a:v2 vs b:v2",
        "",
        f"- a:v1: commit {git(project, 'rev-parse', 'a')}",
        f"- a:v2: commit {git(project, 'rev-parse', 'a')}",
        f"- b:v2: commit {git(project, 'rev-parse', 'b')}",
    ]
    assert lines[8].startswith("| all | 8 | 0.250 [") and lines[8].endswith(" ! | 0.625 | 0.0312 |")
    assert lines[9].startswith("| *condition=clean | 4 | 0.000 [0.000, 0.602] | 0.500 [")
    assert lines[9].endswith("| +1.000 [+1.000, +1.000] | 0.5 | 0.125 |")
    assert lines[10].startswith("| **condition=car** | 4 | 0.500 [") and " REGRESSION |" not in md
    page = (tmp_path / "report.html").read_text()
    assert page.count('<img src="data:image/png;base64,') >= 1 + 3 + 6  # bars, 3 confusion matrices, samples


def test_a_significant_regression_on_a_protected_slice_exits_2_naming_it(project, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(project)
    assert main(["compare", "regress", "a", "b", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    # 10 of 12 clean samples right -> wrong: delta -10/12, McNemar p = 2 / 2^10, interval below 0
    assert "curate compare: error: audit gate failed" in err
    assert "protected slice 'condition=clean' regressed in b:v2: accuracy 1.000 -> 0.167 (delta -0.833" in err
    assert "beyond the tolerance 0.02" in err
    md = (tmp_path / "compare.md").read_text()  # written before the gate fails, the regression marked
    assert "| **condition=clean** | 12 | 1.000" in md and "! REGRESSION |" in md
    report = json.loads((tmp_path / "compare.json").read_text())
    assert report["audit"]["failures"] and report["slices"][0]["slice"] == "condition=clean"
    assert 'class="num regression"' in (tmp_path / "report.html").read_text()


def test_versions_with_different_test_sets_are_refused_naming_them(project, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(project)
    assert main(["compare", "differ", "a", "b:v2", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert (
        "versions a:v2 and b:v2 were not evaluated on the same test samples: 4 and 4 rows, "
        "1 id(s) only in a:v2 (e.g. 's3'), 1 only in b:v2 (e.g. 's9')"
    ) in err
    assert not (tmp_path / "compare.md").exists()


@pytest.mark.parametrize(
    ("versions", "message"),
    [
        (["a"], "at least two different versions, got a:v2"),
        (["a", "a:v2"], "at least two different versions, got a:v2, a:v2"),
        (["a:v1", "b:v9"], "'b:v9': unknown version 'v9'"),
        (["a", "nope"], "unknown revision 'nope'"),
    ],
)
def test_compare_refuses_bad_version_lists(project, monkeypatch, capsys, versions, message):
    monkeypatch.chdir(project)
    assert main(["compare", "hand", *versions]) == 2
    assert message in capsys.readouterr().err
