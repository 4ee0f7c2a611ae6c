"""The error analysis of the FSDD baseline on its ESC-50 noise test slices: run the real pipeline up to analyze.

Usage (from the repository root): python -m benchmarks.fsdd_analysis [--keep DIR]
A scratch copy of the project gets examples/fsdd.params.yaml as its only data set (files read where they are,
in ../shared/data); `dvc repro analyze@fsdd` runs ingest .. analyze; the script prints the seconds per stage,
the test error-analysis table (every slice with its 95% interval, ranked by priority), the top-priority
slice and the weak slices discovered. `--keep DIR` leaves the project there (report.html in
DIR/data/fsdd/analysis/).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.common import example_block
from benchmarks.pipeline_times import BIN, ROOT, copy_project, run

SHARED = ROOT.parent / "shared" / "data"
STAGES = ("ingest", "validate", "split", "conditions", "train", "evaluate", "analyze")


def prepare(work: Path) -> None:
    """A project copy whose params hold only the FSDD block of examples/, pointing at ../shared/data."""
    copy_project(work)
    fsdd = example_block("fsdd")
    fsdd["source"] |= {"root": str(SHARED), "manifest": str(SHARED / "fsdd" / "metadata.csv")}
    fsdd["noise"]["manifest"] = str(SHARED / "noise" / "metadata.csv")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    (work / "params.yaml").write_text(yaml.safe_dump({"seed": params["seed"], "datasets": {"fsdd": fsdd}}))
    (work / "reviews" / "fsdd.csv").write_text("id,decision,label,labeler,note\n")
    for cmd in (["git", "init", "-q"], [str(BIN / "dvc"), "init", "-q"]):
        run(cmd, work)
    run([str(BIN / "dvc"), "config", "core.analytics", "false"], work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", type=Path, default=None, help="leave the project in this (new) folder")
    args = parser.parse_args()
    if not (SHARED / "fsdd" / "metadata.csv").exists():
        print(f"real data not found at {SHARED}: nothing to measure")
        return
    tmp = tempfile.mkdtemp()
    work = args.keep or Path(tmp) / "project"
    work.mkdir(parents=True)
    try:
        prepare(work)
        for stage in STAGES:
            start = time.perf_counter()
            run([str(BIN / "dvc"), "repro", "--single-item", f"{stage}@fsdd"], work)
            print(f"{stage:<11} {time.perf_counter() - start:6.1f} s", flush=True)
        analysis = work / "data" / "fsdd" / "analysis"
        text = (analysis / "errors.md").read_text()
        print(text[text.index("## test") :])
        summary = json.loads((work / "metrics" / "fsdd" / "analysis.json").read_text())
        print(f"top priority on test: {summary['top_priority']['test']}; weak slices discovered: "
              f"{summary['discovered']}; report: {analysis / 'report.html'}")  # fmt: skip
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
