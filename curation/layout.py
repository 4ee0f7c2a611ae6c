"""Where each stage reads and writes, for one data set: the single place that names the files.

`dvc.yaml` declares the same paths as stage deps and outs; `tests/test_layout.py` keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    """Paths of one data set's pipeline outputs, relative to the project folder."""

    dataset: str
    data_root: Path = Path("data")
    metrics_root: Path = Path("metrics")

    @property
    def base(self) -> Path:
        return self.data_root / self.dataset

    @property
    def metrics(self) -> Path:
        return self.metrics_root / self.dataset

    # ingest: what the source lists, unjudged
    @property
    def listing(self) -> Path:
        return self.base / "listing.parquet"

    @property
    def noise_listing(self) -> Path:
        return self.base / "noise_listing.parquet"

    # validate: the kept samples, and what was found
    @property
    def manifest(self) -> Path:
        return self.base / "manifest.parquet"

    @property
    def noise(self) -> Path:
        return self.base / "noise.parquet"

    @property
    def readiness_dir(self) -> Path:
        """report.md, findings.csv, quarantine.csv and probe.parquet (every file's measurements)."""
        return self.base / "readiness"

    @property
    def profile(self) -> Path:
        """The validated data set's profile (git-tracked), which a later version's drift check compares with."""
        return self.metrics / "profile.json"

    @property
    def reference_profile(self) -> Path:
        """The pinned profile of the previous dataset version (`curate pin-profile`); `{}` when none is."""
        return Path("references") / f"{self.dataset}.profile.json"

    # split and evaluation sets
    @property
    def split(self) -> Path:
        return self.base / "split.parquet"

    @property
    def label_issues(self) -> Path:
        """Every train and dev sample's label quality and whether confident learning flags it."""
        return self.base / "label_issues.parquet"

    @property
    def eval_dir(self) -> Path:
        return self.base / "eval"

    def eval_set(self, part: str) -> Path:
        return self.eval_dir / f"{part}.parquet"

    # versions: v1 is the baseline, v2 the curated version
    def version_dir(self, version: str) -> Path:
        return self.base / version

    def train_set(self, version: str) -> Path:
        return self.version_dir(version) / "train.parquet"

    def model(self, version: str) -> Path:
        return self.version_dir(version) / "model.pt"

    def checklist_reference(self, version: str) -> Path:
        """How the version's model and the quality statistics see the real data (`checklist.Reference`)."""
        return self.version_dir(version) / "checklist_reference.npz"

    def predictions(self, version: str, part: str) -> Path:
        """Predictions of an evaluation set, with the samples' metadata and tags."""
        return self.version_dir(version) / f"predictions_{part}.parquet"

    def embeddings(self, version: str, part: str) -> Path:
        """The model's penultimate features of an evaluation set, row-aligned with its predictions."""
        return self.version_dir(version) / f"embeddings_{part}.npy"

    def slice_tables(self, version: str) -> Path:
        """Per-slice, per-class and confusion tables of the dev and test sets ({part}_slices.csv, ...)."""
        return self.version_dir(version) / "slices"

    def plot(self, version: str, name: str) -> Path:
        """A CSV for one of DVC's plot templates (confusion.csv, slices.csv: the test set)."""
        return self.version_dir(version) / "plots" / f"{name}.csv"

    def version_metrics(self, version: str) -> Path:
        return self.metrics / f"{version}.json"

    # analysis, augmentation, checklist
    @property
    def targets(self) -> Path:
        """The slices augmentation aims at, with their priorities (analyze writes it; augment reads only it)."""
        return self.base / "targets.json"

    @property
    def analysis_dir(self) -> Path:
        return self.base / "analysis"

    @property
    def candidates_dir(self) -> Path:
        return self.base / "candidates"

    @property
    def checklist_dir(self) -> Path:
        return self.base / "checklist"

    # version cards (the card stage, after the retrained model is evaluated)
    def card(self, version: str) -> Path:
        return self.version_dir(version) / "card.md"

    @property
    def cards(self) -> Path:
        """Every version's card as JSON, by version."""
        return self.metrics / "cards.json"

    # review: the store the web app writes, and the plain files `curate review export` makes from it
    @property
    def reviews(self) -> Path:
        return self.data_root / "reviews"

    @property
    def decisions(self) -> Path:
        """One decision per reviewed sample: a git-tracked CSV that the build stage reads."""
        return self.reviews / f"{self.dataset}.csv"

    @property
    def annotations(self) -> Path:
        """Every labeler's current decision per sample (git-tracked): what agreement is measured on."""
        return self.reviews / f"{self.dataset}.annotations.csv"

    @property
    def review_store(self) -> Path:
        """The review app's SQLite store (not versioned: its export is)."""
        return self.reviews / f"{self.dataset}.sqlite"

    @property
    def comparison(self) -> Path:
        return self.base / "compare.md"

    @property
    def comparison_figure(self) -> Path:
        return self.base / "compare.png"
