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

    # ingest
    @property
    def manifest(self) -> Path:
        return self.base / "manifest.parquet"

    @property
    def noise(self) -> Path:
        return self.base / "noise.parquet"

    @property
    def ingest_report(self) -> Path:
        return self.base / "ingest.md"

    # split and evaluation sets
    @property
    def split(self) -> Path:
        return self.base / "split.parquet"

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

    def predictions(self, version: str, part: str) -> Path:
        return self.version_dir(version) / f"predictions_{part}.parquet"

    def version_metrics(self, version: str) -> Path:
        return self.metrics / f"{version}.json"

    # analysis, augmentation, checklist
    @property
    def analysis_dir(self) -> Path:
        return self.base / "analysis"

    @property
    def candidates_dir(self) -> Path:
        return self.base / "candidates"

    @property
    def checklist_dir(self) -> Path:
        return self.base / "checklist"

    @property
    def decisions(self) -> Path:
        """Labelers' decisions on the review queue: a git-tracked CSV that the build stage reads."""
        return Path("reviews") / f"{self.dataset}.csv"

    @property
    def comparison(self) -> Path:
        return self.base / "compare.md"

    @property
    def comparison_figure(self) -> Path:
        return self.base / "compare.png"
