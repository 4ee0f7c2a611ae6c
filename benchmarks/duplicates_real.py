"""Measure the duplicate checks on the real data sets in ../shared/data, to pick and verify their defaults.

Usage: python benchmarks/duplicates_real.py [--data ../shared/data] [--sample 200]
Decodes every file with PIL / soundfile directly, builds a minimal probe table (id, path, split, sha256,
content_hash, fingerprint) and runs the exact_duplicate / near_duplicate / leakage checks on it. Prints:
roman/ exact-pixel pairs across train and val (known: 49) and label_book images also in val (known: 3);
neu_det/ duplicate pairs (known: 1); fsdd/ near pairs at the default distance (should be none); near pair
counts per distance; and how far re-encoded / edited copies of a seeded sample move their fingerprints.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from PIL import Image
from scipy.signal import resample_poly

from curation.checks.duplicates import (
    ExactDuplicate,
    Leakage,
    NearDuplicate,
    audio_fingerprint,
    hamming,
    image_fingerprint,
    near_pairs,
)
from curation.checks.findings import Context

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
DISTANCES = (0, 2, 4, 6, 8)
SEED = 0


def image_row(path: Path) -> tuple[dict[str, str], np.ndarray]:
    """The table cells of one image (as the probe computes them) and its 8-bit grey pixels."""
    data = path.read_bytes()
    with Image.open(io.BytesIO(data)) as image:
        native = np.asarray(image)
        grey = np.asarray(image.convert("L"))
        mode = image.mode
    content = hashlib.md5(native.tobytes() + repr(native.shape).encode() + mode.encode()).hexdigest()
    cells = {"sha256": hashlib.sha256(data).hexdigest(), "content_hash": content}
    return cells | {"fingerprint": image_fingerprint(grey)}, grey


def audio_row(path: Path) -> tuple[dict[str, str], np.ndarray, int]:
    """The table cells of one clip (as the probe computes them), its mono float32 samples and sample rate."""
    data = path.read_bytes()
    samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    content = hashlib.md5(samples.tobytes() + f"{rate}:{samples.shape[1]}".encode()).hexdigest()
    mono = samples.mean(axis=1)
    cells = {"sha256": hashlib.sha256(data).hexdigest(), "content_hash": content}
    return cells | {"fingerprint": audio_fingerprint(mono, rate)}, mono, rate


def build_table(folder: Path, modality: str, split: str | None) -> tuple[pd.DataFrame, list, dict[str, float]]:
    """The minimal probe table of a data set folder, the decoded media, and timings (ms per file)."""
    meta = pd.read_csv(folder / "metadata.csv")
    rows, media = [], []
    start = time.perf_counter()
    for rel in meta["path"]:
        if modality == "image":
            cells, grey = image_row(folder / rel)
            media.append(grey)
        else:
            cells, mono, rate = audio_row(folder / rel)
            media.append((mono, rate))
        rows.append(cells)
    elapsed = time.perf_counter() - start
    start = time.perf_counter()
    if modality == "image":
        [image_fingerprint(m) for m in media]
    else:
        [audio_fingerprint(m, r) for m, r in media]
    fingerprinting = time.perf_counter() - start
    table = pd.DataFrame(rows)
    table.insert(0, "id", meta["path"])
    table.insert(1, "path", meta["path"])
    table["label"] = meta["label"].astype(str)
    table["split"] = meta[split].astype(str) if split else ""
    table["decode_error"] = ""
    for extra in ("pixel_md5", "speaker"):
        if extra in meta:
            table[extra] = meta[extra].astype(str)
    per_file = {
        "read+decode+hash ms/file": 1e3 * elapsed / len(meta),
        "fingerprint ms/file": 1e3 * fingerprinting / len(meta),
    }
    return table, media, per_file


def exact_pairs(table: pd.DataFrame) -> list[tuple[int, int]]:
    """Every pair of rows sharing sha256 or content_hash (i < j)."""
    pairs = set()
    for column in ("sha256", "content_hash"):
        for members in table.groupby(column).indices.values():
            pairs.update((int(a), int(b)) for n, a in enumerate(members) for b in members[n + 1 :])
    return sorted(pairs)


def near_counts(table: pd.DataFrame) -> tuple[dict[int, int], list[tuple[int, int, int]], float]:
    """Non-exact pairs within each of DISTANCES, the pairs themselves (up to the largest) and the search time."""
    exact = set(exact_pairs(table))
    start = time.perf_counter()
    pairs = [p for p in near_pairs(table["fingerprint"].tolist(), max(DISTANCES)) if p[:2] not in exact]
    seconds = time.perf_counter() - start
    return {k: sum(d <= k for _, _, d in pairs) for k in DISTANCES}, pairs, seconds


def run_checks(table: pd.DataFrame, modality: str, split: bool) -> dict[str, list]:
    """The findings of the three checks at their defaults."""
    ctx = Context(modality, {}, split_column="split" if split else None)
    return {check.name: check.find_issues(table, ctx) for check in (ExactDuplicate(), NearDuplicate(), Leakage())}


def robustness(fingerprint: Callable, items: list, edits: dict[str, Callable]) -> None:
    """Print how many bits each edit moves the fingerprint of `items`: mean, 95th percentile and max."""
    for name, edit in edits.items():
        moved = np.array([hamming(fingerprint(*item), fingerprint(*edit(*item))) for item in items])
        print(f"    {name:>16}: mean {moved.mean():.1f}  p95 {np.percentile(moved, 95):.0f}  max {moved.max()}")


def jpeg(grey: np.ndarray, quality: int) -> np.ndarray:
    """`grey` after a JPEG round trip at `quality`."""
    buffer = io.BytesIO()
    Image.fromarray(grey).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("L"))


IMAGE_EDITS: dict[str, Callable] = {
    "jpeg q90": lambda g: (jpeg(g, 90),),
    "jpeg q50": lambda g: (jpeg(g, 50),),
    "brightness +20": lambda g: (np.clip(g.astype(np.int16) + 20, 0, 255).astype(np.uint8),),
    "half size": lambda g: (np.asarray(Image.fromarray(g).resize((g.shape[1] // 2, g.shape[0] // 2))),),
}


def audio_edits(rng: np.random.Generator) -> dict[str, Callable]:
    """Re-encodings and light edits of a clip (samples, rate) -> (samples, rate). The encoders get the clip
    normalised to full scale (a gain, which the fingerprint ignores): 8 bits would erase FSDD's quietest clips,
    whose peaks sit near -35 dBFS."""

    def noise(x: np.ndarray, rate: int) -> tuple[np.ndarray, int]:
        rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
        return (x + rng.normal(0.0, rms * 0.01, len(x))).astype(np.float32), rate

    def encoded(x: np.ndarray, rate: int, container: str, subtype: str) -> tuple[np.ndarray, int]:
        buffer = io.BytesIO()
        sf.write(buffer, x / max(float(np.abs(x).max()), 1e-9), rate, format=container, subtype=subtype)
        return sf.read(io.BytesIO(buffer.getvalue()), dtype="float32")[0], rate

    return {
        "gain x0.3": lambda x, r: (x * 0.3, r),
        "to 16 kHz": lambda x, r: (resample_poly(x, 2, 1).astype(np.float32), 2 * r),
        "to 11.025 kHz": lambda x, r: (resample_poly(x, 441, 320).astype(np.float32), r * 441 // 320),
        "noise 40 dB SNR": noise,
        "8-bit PCM": lambda x, r: encoded(x, r, "WAV", "PCM_U8"),
        "Ogg Vorbis": lambda x, r: encoded(x, r, "OGG", "VORBIS"),
        "0.1 s silence pad": lambda x, r: (np.pad(x, (r // 10, r // 10)), r),
    }


def roman(folder: Path, sample: int) -> None:
    """Exact and near duplicates, and leaks, in the Roman numerals (train / val / label_book)."""
    table, media, timing = build_table(folder, "image", "split")
    print(f"roman/: {len(table)} images; {timing_text(timing)}")
    pixel_md5_groups = table.groupby("pixel_md5")["content_hash"].nunique().max()
    same = table.groupby("content_hash")["pixel_md5"].nunique().max()
    print(f"  content_hash agrees with metadata pixel_md5: {pixel_md5_groups == 1 and same == 1}")
    sides = Counter(tuple(sorted(table["split"].iloc[[i, j]])) for i, j in exact_pairs(table))
    print(f"  exact-pixel pairs across train/val: {sides[('train', 'val')]} (known: 49)")
    print(
        f"  label_book images also in val: {sides[('label_book', 'val')]} (known: 3); all pairs by sides: {dict(sides)}"
    )
    report_near(table)
    findings = run_checks(table, "image", split=True)
    print("  findings at the defaults:", {k: len(v) for k, v in findings.items()})
    print("    leakage by side:", dict(Counter(table.set_index("id").loc[f.id, "split"] for f in findings["leakage"])))
    near_leaks = [f for f in findings["leakage"] if "bits differ" in f.reason]
    for f in near_leaks:
        print(f"    near leak: {f.path}: {f.reason}")
    print("  fingerprint movement under edits (seeded sample):")
    rng = np.random.default_rng(SEED)
    robustness(image_fingerprint, [(media[i],) for i in rng.choice(len(media), sample, replace=False)], IMAGE_EDITS)


def neu_det(folder: Path, sample: int) -> None:
    """Exact and near duplicates in NEU-DET steel surface images."""
    table, media, timing = build_table(folder, "image", None)
    print(f"neu_det/: {len(table)} images; {timing_text(timing)}")
    pairs = exact_pairs(table)
    print(f"  exact duplicate pairs: {len(pairs)} (known: 1)")
    for i, j in pairs:
        print(f"    {table['path'][i]} = {table['path'][j]}")
    report_near(table)
    print("  findings at the defaults:", {k: len(v) for k, v in run_checks(table, "image", split=False).items()})
    print("  fingerprint movement under edits (seeded sample):")
    rng = np.random.default_rng(SEED)
    robustness(image_fingerprint, [(media[i],) for i in rng.choice(len(media), sample, replace=False)], IMAGE_EDITS)


def fsdd(folder: Path, sample: int) -> None:
    """Near duplicates among FSDD recordings (none expected: 50 takes per digit and speaker are all distinct)."""
    table, media, timing = build_table(folder, "audio", None)
    print(f"fsdd/: {len(table)} clips; {timing_text(timing)}")
    print(f"  exact duplicate pairs: {len(exact_pairs(table))}")
    _, pairs = report_near(table)
    default = NearDuplicate.max_distance
    hits = [p for p in pairs if p[2] <= default]
    print(f"  near pairs at the default max_distance {default}: {len(hits)}")
    for i, j, d in hits:
        print(f"    {table['path'][i]} ~ {table['path'][j]}: {d} bits")
    closest = min((d for _, _, d in pairs), default=None)
    print(f"  closest two recordings: {closest} bits apart (within {max(DISTANCES)} searched)")
    same = sum(
        table["label"][i] == table["label"][j] and table["speaker"][i] == table["speaker"][j] for i, j, _ in pairs
    )
    print(f"  of the {len(pairs)} pairs within {max(DISTANCES)} bits, same digit and speaker: {same}")
    print("  fingerprint movement under edits (seeded sample):")
    rng = np.random.default_rng(SEED)
    items = [media[i] for i in rng.choice(len(media), sample, replace=False)]
    robustness(audio_fingerprint, items, audio_edits(rng))


def report_near(table: pd.DataFrame) -> tuple[dict[int, int], list[tuple[int, int, int]]]:
    """Print the non-exact near pair counts per distance and the search time."""
    counts, pairs, seconds = near_counts(table)
    print(f"  near (not exact) pairs within d bits: {counts}; search up to {max(DISTANCES)} took {seconds:.2f} s")
    return counts, pairs


def timing_text(timing: dict[str, float]) -> str:
    """Timings for one line."""
    return ", ".join(f"{k} {v:.2f}" for k, v in timing.items())


def main() -> None:
    """Run every data set that is present; say which are missing."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding roman/, neu_det/, fsdd/")
    parser.add_argument("--sample", type=int, default=200, help="files per data set for the edit measurements")
    args = parser.parse_args()
    runs = {"roman": roman, "neu_det": neu_det, "fsdd": fsdd}
    for name, run in runs.items():
        folder = args.data / name
        if not (folder / "metadata.csv").is_file():
            print(f"{name}/: skipped, no {folder / 'metadata.csv'} (the shared data sets are not beside the checkout)")
            continue
        run(folder, args.sample)


if __name__ == "__main__":
    main()
