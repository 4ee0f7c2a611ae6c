"""Time the ingest + validate stages on a real data set beside the checkout and print the median of runs.

Usage: python benchmarks/validate_real.py [--dataset fsdd] [--runs 3] [--workers 1 2]
The data set's params block comes from examples/<dataset>.params.yaml; its files are read where they are
(../shared/data). Target (issue 3): all 3,000 FSDD files validated in under 30 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import yaml

from curation.ingest import list_noise, list_source
from curation.validate import validate, validate_noise

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def _absolute(value: str) -> str:
    """A ../shared/data path of the example params, made absolute so that any working folder will do."""
    return str(SHARED / Path(value).relative_to("../shared/data"))


def main() -> int:
    """Run the benchmark; exit 0 having printed the numbers, or 0 with a note when the data is absent."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="fsdd")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"real data not found at {SHARED}: nothing to time")
        return 0
    text = (ROOT / "examples" / f"{args.dataset}.params.yaml").read_text()
    block = yaml.safe_load("datasets:\n" + text)["datasets"][args.dataset]
    source = {k: _absolute(v) if k in ("root", "manifest") else v for k, v in block["source"].items()}
    noise_cfg = block.get("noise") and {**block["noise"], "manifest": _absolute(block["noise"]["manifest"])}
    settings = block.get("validate") or {}
    for workers in args.workers:
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            listing, _ = list_source(source, block["modality"])
            result = validate(
                listing, source["root"], block["modality"], block["media"], labels=block.get("labels"),
                settings=settings.get("checks"), on_error=block.get("on_error", "fail"),
                split_column=settings.get("split_column"), workers=workers,
            )  # fmt: skip
            noise = validate_noise(
                list_noise(source["root"], noise_cfg), source["root"], block["media"], workers=workers
            )
            times.append(time.perf_counter() - start)
        r = result.report
        print(
            f"{args.dataset}, {workers} worker(s): {r['seen']} files = {r['kept']} kept + {r['quarantined']} "
            f"quarantined, {noise.report['seen']} noise clips; median {statistics.median(times):.1f} s over "
            f"{args.runs} runs ({', '.join(f'{t:.1f}' for t in times)})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
