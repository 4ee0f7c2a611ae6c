"""The whole loop under `dvc repro`, on reduced demo data, in a throw-away copy of the project."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from benchmarks.pipeline_times import STAGES, copy_project
from curation.review.store import ReviewStore

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow


def run(cmd: list[str], cwd: Path) -> str:
    env = os.environ | {"PATH": f"{BIN}:{os.environ['PATH']}", "NO_ALBUMENTATIONS_UPDATE": "1"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc.stdout


def reduce_params(params: dict) -> dict:
    """Small budgets and few epochs: the same stages, in a fraction of the time."""
    for cfg in params["datasets"].values():
        cfg["train"] |= {"epochs": 3, "patience": 2}
        cfg["label_issues"] |= {"folds": 2, "epochs": 2}
        cfg["audit"]["tolerance"] = 1.0  # 3-epoch models are noisy; the gate has its own tests
        cfg["augment"]["budget"] = 120
        cfg["analyze"]["min_size"] = 10
    return params


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("project")
    copy_project(work)
    params = reduce_params(yaml.safe_load((work / "params.yaml").read_text()))
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "init", "-q"], work)
    run([str(BIN / "dvc"), "init", "-q"], work)
    run([str(BIN / "dvc"), "config", "core.analytics", "false"], work)
    run([str(BIN / "dvc"), "repro"], work)
    return work


def test_every_stage_ran_for_both_demo_sets(project):
    lock = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    for ds in ("digits", "spoken_digits"):
        for stage in STAGES:
            assert f"{stage}@{ds}" in lock


def test_counts_reconcile_and_slices_are_reported(project):
    for ds, conditions in (("digits", 4), ("spoken_digits", 5)):
        ready = json.loads((project / f"metrics/{ds}/readiness.json").read_text())
        assert ready["seen"] == ready["kept"] + ready["quarantined"] and ready["quarantined"] == 0
        assert ready["reconciled"] and (project / f"data/{ds}/readiness/report.md").exists()
        issues = pd.read_parquet(project / f"data/{ds}/label_issues.parquet")
        split = pd.read_parquet(project / f"data/{ds}/split.parquet")
        assert sorted(issues["id"]) == sorted(split.loc[split["split"] != "test", "id"])
        assert issues["label_quality"].between(0, 1).all()
        v1 = json.loads((project / f"metrics/{ds}/v1.json").read_text())
        slices = v1["test"]["slices"]
        assert len([s for s in slices if s.startswith("condition=")]) == conditions
        for row in slices.values():
            assert row["ci_low"] <= row["accuracy"] <= row["ci_high"]
        compare = json.loads((project / f"metrics/{ds}/compare.json").read_text())
        assert set(compare) == set(slices)
        card = json.loads((project / f"metrics/{ds}/card_v2.json").read_text())
        checklist = json.loads((project / f"metrics/{ds}/checklist.json").read_text())
        assert card["accepted_by_checklist"] == checklist["total"].get("accept", 0) == card["added"]


def test_error_analysis_outputs(project):
    for ds in ("digits", "spoken_digits"):
        analysis = json.loads((project / f"metrics/{ds}/analysis.json").read_text())
        errors = pd.read_csv(project / f"data/{ds}/analysis/errors_test.csv")
        assert errors["slice"].iloc[0] == "all"
        ranked = errors["priority"].iloc[1:]
        assert (ranked.diff().dropna() <= 1e-12).all()  # priorities ordered, highest first
        assert (errors["ci_low"] <= errors["accuracy"]).all() and (errors["accuracy"] <= errors["ci_high"]).all()
        top = analysis["top_priority"]["test"]
        assert top in set(errors["slice"])
        html = (project / f"data/{ds}/analysis/report.html").read_text()
        assert "https://" not in html and "http://" not in html and top in html
        tables = project / f"data/{ds}/v1/slices"
        classes = pd.read_csv(tables / "test_classes.csv", keep_default_na=False)
        assert set(classes["class"].astype(str)) == {str(d) for d in range(10)}
        assert (project / f"data/{ds}/analysis/discovered_test.csv").exists()
    digits = pd.read_parquet(project / "data/digits/v1/predictions_test.parquet")
    assert "tag:low_ink" in digits.columns  # a user tag function registered in params
    assert digits.loc[digits["condition"] == "clean", "tag:low_ink"].sum() == 0
    plots = json.loads(run([str(BIN / "dvc"), "plots", "show", "--json"], project))
    assert not plots.get("errors"), plots.get("errors")
    assert {"data/digits/v1/plots/confusion.csv", "data/spoken_digits/v2/plots/slices.csv"} <= set(plots["data"])


def test_review_decisions_flow_into_the_next_version(project):
    """Decisions stored as the review app stores them, exported, then `dvc repro`: only what depends on the
    review files reruns, and the new version's card and manifest show the decisions."""
    queue = pd.read_csv(project / "data/spoken_digits/checklist/review_queue.csv", dtype=str, keep_default_na=False)
    cands = queue[queue["kind"] == "candidate"]
    assert len(cands) >= 3, "the reduced run queued too few candidates to review"
    relabeled, rejected, accepted = cands["id"].iloc[:3]
    other = next(x for x in map(str, range(10)) if x != cands["label"].iloc[0])
    store = ReviewStore(project / "data/reviews/spoken_digits.sqlite")
    for labeler in ("ann", "bo"):
        store.decide(relabeled, labeler, "relabel", other)
        store.decide(rejected, labeler, "reject", cands["label"].iloc[1])
    store.decide(accepted, "ann", "accept", cands["label"].iloc[2], note="#clear")
    run([str(BIN / "curate"), "review", "export", "spoken_digits"], project)
    changed = set(json.loads(run([str(BIN / "dvc"), "status", "--json"], project)))
    assert changed == {"evaluate@spoken_digits", "review@spoken_digits", "build@spoken_digits",
                       "reevaluate@spoken_digits"}, changed  # fmt: skip
    out = run([str(BIN / "dvc"), "repro"], project)
    ran = {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}
    # the note's #clear becomes a tag of the error analysis (evaluate, then analyze); nothing of digits reruns
    downstream = ("evaluate", "analyze", "review", "build", "retrain", "reevaluate", "card", "compare")
    assert ran <= {f"{s}@spoken_digits" for s in downstream}
    card = json.loads((project / "metrics/spoken_digits/card_v2.json").read_text())
    assert card["review"] | {"queued": None} == {"queued": None, "decided": 3, "added": 2, "relabeled": 1,
                                                 "rejected": 1, "unsure": 0, "stale": []}  # fmt: skip
    v2 = pd.read_parquet(project / "data/spoken_digits/v2/train.parquet").set_index("id")
    assert rejected not in v2.index and (relabeled not in v2.index or v2.loc[relabeled, "label"] == other)
    review = json.loads((project / "metrics/spoken_digits/review.json").read_text())
    assert (review["all"]["pairs"], review["all"]["agreement"]) == (2, 1.0)


def test_decisions_on_remade_candidates_go_stale_and_do_not_reach_the_next_version(project):
    """After the review test: a new policy remakes every candidate (files are named by content), so the exported
    decisions name files nobody queued any more; `dvc repro` must leave them out and say so in the card."""
    decisions = pd.read_csv(project / "data/reviews/spoken_digits.csv", dtype=str, keep_default_na=False)
    decided = dict(zip(decisions["id"], decisions["decision"], strict=True))
    relabeled = next(i for i, d in decided.items() if d == "relabel")
    other = decisions.set_index("id").loc[relabeled, "label"]
    params = yaml.safe_load((project / "params.yaml").read_text())
    for spec in params["datasets"]["spoken_digits"]["augment"]["policies"].values():
        spec.append({"name": "Gain", "min_gain_db": -1, "max_gain_db": 1})
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run([str(BIN / "dvc"), "repro"], project)
    card = json.loads((project / "metrics/spoken_digits/card_v2.json").read_text())
    assert (card["review"]["decided"], card["review"]["added"], card["review"]["relabeled"]) == (0, 0, 0)
    assert sorted(s["id"] for s in card["review"]["stale"]) == sorted(decided)
    assert all(s["reason"].startswith(("no longer in the review queue", "queued with another file"))
               for s in card["review"]["stale"])  # fmt: skip
    v2 = pd.read_parquet(project / "data/spoken_digits/v2/train.parquet").set_index("id")
    assert relabeled not in v2.index or v2.loc[relabeled, "label"] != other  # the old relabel did not apply


def test_changing_a_checklist_param_reruns_only_what_depends_on_it(project):
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["datasets"]["digits"]["checklist"]["clarity_accept"] = 0.7
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = run([str(BIN / "dvc"), "status", "--json"], project)
    changed = set(json.loads(status))
    assert changed == {"filter@digits", "card@digits"}, changed  # the card records the params that shaped v2


SHARED = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="module")
def fsdd_project(tmp_path_factory) -> Path:
    """The real FSDD + ESC-50 run from ../shared/data, reduced to takes 0-11 of every speaker and digit."""
    if not (SHARED / "fsdd" / "metadata.csv").exists() or not (SHARED / "noise" / "metadata.csv").exists():
        pytest.skip(f"real data not found at {SHARED}: the FSDD + noise run is skipped")
    work = tmp_path_factory.mktemp("fsdd")
    copy_project(work)
    block = yaml.safe_load("datasets:\n" + (ROOT / "examples" / "fsdd.params.yaml").read_text())["datasets"]
    fsdd = block["fsdd"]
    fsdd["source"] |= {"root": str(SHARED), "manifest": str(SHARED / "fsdd" / "metadata.csv"), "query": "index < 12"}
    fsdd["noise"]["manifest"] = str(SHARED / "noise" / "metadata.csv")
    params = reduce_params({"seed": 7, "datasets": {"fsdd": fsdd}})
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (work / "data" / "reviews" / "fsdd.csv").write_text("id,decision,label,labeler,note\n")
    (work / "data" / "reviews" / "fsdd.annotations.csv").write_text("id,labeler,decision,label,note,blind,decided_at\n")
    run(["git", "init", "-q"], work)
    run([str(BIN / "dvc"), "init", "-q"], work)
    run([str(BIN / "dvc"), "config", "core.analytics", "false"], work)
    stages = [f"{s}@fsdd" for s in STAGES]
    run([str(BIN / "dvc"), "repro", *stages], work)
    return work


@pytest.mark.shared_data
def test_real_fsdd_with_esc50_noise_runs_the_loop(fsdd_project):
    ready = json.loads((fsdd_project / "metrics/fsdd/readiness.json").read_text())
    assert (ready["listed"], ready["seen"], ready["kept"]) == (3000, 720, 720)
    assert ready["noise"]["kept"] == 156
    split = pd.read_parquet(fsdd_project / "data/fsdd/split.parquet")
    test = split[split["split"] == "test"]
    assert sorted(set(test["index"].astype(int))) == [0, 1, 2, 3, 4]  # FSDD's official test takes
    noise = pd.read_parquet(fsdd_project / "data/fsdd/noise.parquet").set_index("id")
    assert ready["noise"]["pools"] == noise["pool"].value_counts().to_dict()
    for part, pool in (("test", "test"), ("dev", "dev")):  # the example holds out a quarter of augment for dev
        ev = pd.read_parquet(fsdd_project / f"data/fsdd/eval/{part}.parquet")
        used = {
            r["params"]["clip_id"]
            for params in ev["augment_params"]
            if params
            for r in json.loads(params)
            if r["name"] == "BackgroundNoise"
        }
        assert used and set(noise.loc[sorted(used), "pool"]) == {pool}, part
    compare = json.loads((fsdd_project / "metrics/fsdd/compare.json").read_text())
    assert {"condition=machine_0db", "condition=telephone", "speaker=george"} <= set(compare)
    strata = json.loads((fsdd_project / "metrics/fsdd/card_v2.json").read_text())["stratified"]
    assert (strata["transform"], strata["param"], strata["bins"]) == ("BackgroundNoise", "snr_db", 4)
    assert strata["median_drawn"] and set(strata["median_paid"]) <= set(strata["median_drawn"])  # reduced: few pass
    assert all(t.endswith("db") for t in strata["median_drawn"])  # noise targets only: telephone draws no SNR
