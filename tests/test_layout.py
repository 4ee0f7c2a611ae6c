"""dvc.yaml and curation/layout.py name the same files."""

from pathlib import Path

import yaml

from curation.layout import Layout

ROOT = Path(__file__).resolve().parents[1]


def _declared(stage: dict, key: str) -> set[str]:
    paths = set()
    for field in ("outs", "metrics", "plots"):
        for entry in stage["do"].get(field, []):
            path = next(iter(entry)) if isinstance(entry, dict) else entry
            paths.add(path.replace("${key}", key))
    return paths


def _evaluated(lay: Layout, version: str) -> set[Path]:
    """What the evaluate stage writes for one version."""
    parts = ("dev", "test")
    return {
        *(lay.predictions(version, p) for p in parts),
        *(lay.embeddings(version, p) for p in parts),
        lay.slice_tables(version),
        lay.version_metrics(version),
        lay.plot(version, "confusion"),
        lay.plot(version, "slices"),
    }


def test_every_stage_output_is_a_layout_path():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    lay = Layout("digits")
    expected = {
        "ingest": {lay.listing, lay.noise_listing, lay.metrics / "ingest.json"},
        "validate": {lay.manifest, lay.noise, lay.readiness_dir, lay.profile, lay.metrics / "readiness.json"},
        "split": {lay.split},
        "label_issues": {lay.label_issues, lay.metrics / "label_issues.json"},
        "conditions": {lay.eval_dir},
        "train": {lay.model("v1"), lay.metrics / "train_v1.json"},
        "evaluate": _evaluated(lay, "v1"),
        "analyze": {lay.analysis_dir, lay.targets, lay.metrics / "analysis.json"},
        "reference": {lay.checklist_reference("v1")},
        "augment": {lay.candidates_dir},
        "filter": {lay.checklist_dir, lay.metrics / "checklist.json"},
        "build": {lay.train_set("v2"), lay.metrics / "card_v2.json"},
        "retrain": {lay.model("v2"), lay.metrics / "train_v2.json"},
        "reevaluate": _evaluated(lay, "v2"),
        "compare": {lay.comparison, lay.comparison_figure, lay.metrics / "compare.json"},
    }
    for name, paths in expected.items():
        assert _declared(stages[name], "digits") == {str(p) for p in paths}, name


def test_validate_reads_the_pinned_reference_profile():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert "references" in stages["validate"]["do"]["deps"]
    assert str(Layout("x").reference_profile) == "references/x.profile.json"


def test_build_reads_the_decisions_file_of_the_layout():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert "data/reviews/${key}.csv" in stages["build"]["do"]["deps"]
    assert str(Layout("x").decisions) == "data/reviews/x.csv"


def test_review_stage_reads_the_annotations_and_writes_the_review_metrics():
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["review"]
    assert "data/reviews/${key}.annotations.csv" in stage["do"]["deps"]
    assert str(Layout("x").annotations) == "data/reviews/x.annotations.csv"
    assert _declared(stage, "x") == {str(Layout("x").metrics / "review.json")}
