"""Time every stage of the demo pipeline from clean, stage by stage, and print medians over several runs.

Usage: python benchmarks/pipeline_times.py [--runs 3] [--datasets digits spoken_digits]
Each run copies the project (code, dvc.yaml, params.yaml) into a fresh temporary folder with no data, then
runs `dvc repro --single-item` for each stage in pipeline order, timing each.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PROJECT_FILES = (
    "curation", "augment", "examples", "dvc.yaml", "params.yaml", "data/reviews", "references", "pyproject.toml"
)  # fmt: skip
DEMO_STAGES = ("demo",)
STAGES = (
    "ingest",
    "validate",
    "split",
    "label_issues",
    "conditions",
    "train",
    "evaluate",
    "analyze",
    "reference",
    "augment",
    "filter",
    "review",
    "build",
    "retrain",
    "reevaluate",
    "card",
    "compare",
)


def copy_project(work: Path) -> None:
    """The files `dvc repro` needs, without data, results or git history (shared with the end-to-end tests)."""
    for name in PROJECT_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, work / name, ignore=shutil.ignore_patterns("__pycache__", "*.sqlite*"))
        else:
            shutil.copy2(src, work / name)


def run(cmd: list[str], cwd: Path) -> None:
    env = os.environ | {"PATH": f"{BIN}:{os.environ['PATH']}", "NO_ALBUMENTATIONS_UPDATE": "1"}
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def one_run(datasets: list[str]) -> dict[str, float]:
    """Seconds per stage (summed over data sets) for one run from clean."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        copy_project(work)
        run(["git", "init", "-q"], work)
        run([str(BIN / "dvc"), "init", "-q"], work)
        run([str(BIN / "dvc"), "config", "core.analytics", "false"], work)
        times: dict[str, float] = {}
        for stage in (*DEMO_STAGES, *STAGES):
            start = time.perf_counter()
            for ds in datasets:
                run([str(BIN / "dvc"), "repro", "--single-item", f"{stage}@{ds}"], work)
            times[stage] = time.perf_counter() - start
        return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--datasets", nargs="+", default=["digits", "spoken_digits"])
    args = parser.parse_args()
    runs = [one_run(args.datasets) for _ in range(args.runs)]
    print(f"seconds per stage, median of {args.runs} runs from clean ({', '.join(args.datasets)}):")
    for stage in runs[0]:
        print(f"  {stage:<11} {statistics.median(r[stage] for r in runs):7.1f}")
    totals = [sum(r.values()) for r in runs]
    print(f"  {'total':<11} {statistics.median(totals):7.1f}   (runs: {', '.join(f'{t:.0f}' for t in totals)})")


if __name__ == "__main__":
    main()
