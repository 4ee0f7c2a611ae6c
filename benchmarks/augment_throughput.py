"""Throughput of candidate generation + checklist scoring against raw audiomentations / albumentations.

Usage (from the repository root): python -m benchmarks.augment_throughput [--runs 5] [--samples 300]
    [--modality audio image] [--epochs 3] [--warmup 1] [--seed 0]     (progress bars go to stderr)
Target (issue 5): the project's candidates + scoring run at no less than 70% of the raw libraries'
throughput for the same transforms on this machine. Data is read where it lives (../shared/data).

Inputs, the same for both sides of a modality:
- audio: `--samples` FSDD clips (a seeded draw from the official train split) at 8 kHz, the policies of
  examples/fsdd.params.yaml (BackgroundNoise on machine / human / weather at their SNR ranges, Telephone), each
  followed by Gain(-6, 6) dB as the spoken_digits policies of params.yaml do, and the ESC-50 clips of
  pool=augment as the noise (16 kHz files decoded to 8 kHz);
- image: `--samples` Roman-numeral PNGs (a seeded draw from given split train) at their own size, grey, with
  the digits policies of params.yaml (RandomBrightnessContrast + GaussNoise, GaussianBlur,
  RandomBrightnessContrast).
Every slice gets the same share: `--samples` outputs per run, on both sides, from the same (source, policy)
pairs (`candidates.pick_sources`).

Timed on the raw side (per run): build one `am.Compose` / `A.Compose` per policy; for audio, decode the noise
pool into memory (`media.load_audio`, as the project does); then per sample read the source
(`media.load_audio` / `media.load_image`), apply the compose, write the output (`media.save_audio` 16-bit WAV /
`media.save_image` PNG). Same readers and writers as the project, so generation does the same I/O on both
sides; scoring reads no file back (it takes the arrays while they are in memory).
Audio equivalents: BackgroundNoise -> an in-memory AddBackgroundNoise (audiomentations' own RMS / SNR helpers,
random clip and offset, cyclic repeat: `am.AddBackgroundNoise` itself re-reads and resamples its file on every
call, which would flatter us); Gain -> `am.Gain`; Telephone -> `am.HighPassFilter(300)` + `am.LowPassFilter(3400)`
(24 dB/octave, zero phase) + `am.BitCrush(8)` (linear, the closest to 8-bit mu-law). Image transforms are the
same albumentations classes with the same arguments.

Timed on the project's side (per run), as `curate augment` runs: `generate_candidates` (noise pool decoding,
pipeline construction, per-sample seeds, recorded parameters, files written and hashed) scoring every batch of
candidates while in memory with `checklist.Checklist.score` (the model loaded from its file; one pass of the
model per batch through `checklist.model_predictor`; quality statistics; realism against the training clips'
statistics and embeddings; clarity from the reference's p(y | source) and retention), then `verdicts` (the
filter stage). Not timed: choosing the data, training the small model (`train_model` for `--epochs` epochs on
the same clips) and saving it, `--warmup` runs of both, and the checklist reference (`build_reference`: the
training clips' statistics, features, probabilities and, for audio, retention log-mels), which the reference
stage computes once per model and every augment run reuses; its time is printed beside the ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import albumentations as A
import audiomentations as am
import numpy as np
import pandas as pd
import yaml
from audiomentations.core.transforms_interface import BaseWaveformTransform
from audiomentations.core.utils import calculate_desired_noise_rms, calculate_rms

from augment.rng import derive_seed, generator
from benchmarks.common import ROOT, SHARED, example_block
from curation.budget import allocate_budget
from curation.candidates import TRAIN_NOISE_POOL, generate_candidates, pick_sources
from curation.checklist import Checklist, Reference, build_reference, model_predictor, verdicts
from curation.conditions import load_sample
from curation.features import load_inputs
from curation.media import load_audio, load_image, save_audio, save_image
from curation.train import load_model, save_model, train_model

TARGET = 0.70
GAIN = {"name": "Gain", "min_gain_db": -6, "max_gain_db": 6}
TRAIN_CFG = {"batch_size": 64, "lr": 0.003, "weight_decay": 0.0001, "patience": 4, "class_weighting": True}


class MemoryBackgroundNoise(BaseWaveformTransform):
    """`am.AddBackgroundNoise` (noise_rms="relative") on clips held in memory instead of files."""

    supports_multichannel = False

    def __init__(self, clips: list[np.ndarray], min_snr_db: float, max_snr_db: float, rng: np.random.Generator):
        super().__init__(p=1.0)
        self.clips, self.min_snr_db, self.max_snr_db, self.rng = clips, min_snr_db, max_snr_db, rng

    def randomize_parameters(self, samples: np.ndarray, sample_rate: int) -> None:
        """A clip, an offset and an SNR, drawn from the benchmark's own generator."""
        super().randomize_parameters(samples, sample_rate)
        k = int(self.rng.integers(len(self.clips)))
        self.parameters |= {
            "clip": k,
            "offset": int(self.rng.integers(self.clips[k].size)),
            "snr_db": float(self.rng.uniform(self.min_snr_db, self.max_snr_db)),
        }

    def apply(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """Noise from the offset, repeated to length, scaled to the SNR and added."""
        clip = self.clips[self.parameters["clip"]]
        noise = np.roll(clip, -self.parameters["offset"])
        while noise.size < samples.size:
            noise = np.concatenate((noise, noise))
        noise = noise[: samples.size]
        noise_rms = calculate_rms(noise)
        if noise_rms < 1e-9:  # a silent stretch: AddBackgroundNoise returns the input unchanged too
            return samples
        desired = calculate_desired_noise_rms(calculate_rms(samples), self.parameters["snr_db"])
        return (samples + noise * (desired / noise_rms)).astype(np.float32)


def _raw_audio_compose(spec: list[dict], noise: pd.DataFrame, sample_rate: int, seed: int) -> am.Compose:
    """The audiomentations equivalent of one audio policy (noise decoded here, as the project does)."""
    steps: list[BaseWaveformTransform] = []
    for entry in spec:
        name = entry["name"]
        if name == "BackgroundNoise":
            rows = noise[(noise["pool"] == TRAIN_NOISE_POOL) & noise["group"].isin(entry["groups"])]
            clips = [load_audio(p, sample_rate) for p in rows["path"]]
            rng = generator(seed, "raw", json.dumps(entry, sort_keys=True))
            steps.append(MemoryBackgroundNoise(clips, entry["min_snr_db"], entry["max_snr_db"], rng))
        elif name == "Gain":
            steps.append(am.Gain(min_gain_db=entry["min_gain_db"], max_gain_db=entry["max_gain_db"], p=1.0))
        elif name == "Telephone":
            lo, hi = entry.get("low_hz", 300.0), entry.get("high_hz", 3400.0)
            steps += [
                am.HighPassFilter(min_cutoff_freq=lo, max_cutoff_freq=lo, min_rolloff=24, max_rolloff=24,
                                  zero_phase=True, p=1.0),
                am.LowPassFilter(min_cutoff_freq=hi, max_cutoff_freq=hi, min_rolloff=24, max_rolloff=24,
                                 zero_phase=True, p=1.0),
                am.BitCrush(min_bit_depth=entry.get("mu_law_bits", 8), max_bit_depth=entry.get("mu_law_bits", 8),
                            p=1.0),
            ]  # fmt: skip
        else:
            raise ValueError(f"no audiomentations equivalent written for {name!r}")
    return am.Compose(steps, p=1.0)


def _raw_image_compose(spec: list[dict], seed: int) -> A.Compose:
    """The albumentations compose of one image policy, seeded once."""
    steps = [getattr(A, e["name"])(**{k: v for k, v in e.items() if k != "name"}) for e in spec]
    return A.Compose(steps, p=1.0, seed=seed)


def run_raw(
    jobs: list[tuple[str, str]],
    policies: dict[str, list[dict]],
    modality: str,
    media_cfg: dict[str, Any],
    noise: pd.DataFrame,
    seed: int,
    out_dir: Path,
) -> float:
    """Seconds to build the composes and read, transform and write every (source path, policy) job."""
    start = time.perf_counter()
    if modality == "audio":
        sr = media_cfg["sample_rate"]
        audio = {t: _raw_audio_compose(spec, noise, sr, seed) for t, spec in policies.items()}
        for k, (path, target) in enumerate(jobs):
            y = audio[target](load_audio(path, sr), sr)
            save_audio(out_dir / f"{k:05d}.wav", y, sr)
    else:
        image = {t: _raw_image_compose(spec, derive_seed(seed, t)) for t, spec in policies.items()}
        for k, (path, target) in enumerate(jobs):
            y = image[target](image=load_image(path, media_cfg.get("channels", 1)))["image"]
            save_image(out_dir / f"{k:05d}.png", y)
    return time.perf_counter() - start


def run_ours(
    split_df: pd.DataFrame,
    noise: pd.DataFrame,
    targets: list[dict],
    policies: dict[str, list[dict]],
    modality: str,
    media_cfg: dict[str, Any],
    seed: int,
    out_dir: Path,
    model_path: Path,
    reference: Reference,
) -> float:
    """Seconds for generate_candidates scoring as it goes, then verdicts, as cmd_augment and cmd_filter run
    them."""
    start = time.perf_counter()
    model, labels, _ = load_model(model_path)
    predict = model_predictor(model, modality, media_cfg)
    real = split_df[split_df["split"] == "train"]
    checklist = Checklist(reference, real, split_df.set_index("id")["path"].to_dict(), labels, predict, modality,
                          media_cfg)  # fmt: skip
    scored: list[pd.DataFrame] = []
    generate_candidates(split_df, noise, targets, policies, len(split_df), modality, media_cfg, seed, out_dir,
                        on_batch=lambda rows, xs, ys: scored.append(checklist.score(rows, xs, ys)))  # fmt: skip
    verdicts(pd.concat(scored), {"realism_min": 0.01, "clarity_reject": 0.3, "clarity_accept": 0.6,
                                 "weakness_min": 0.02})  # fmt: skip
    return time.perf_counter() - start


def _reference(split_df: pd.DataFrame, modality: str, media_cfg: dict[str, Any], model_path: Path) -> Reference:
    """The checklist reference of the training clips (the reference stage: once per model, untimed)."""
    model, _, _ = load_model(model_path)
    return build_reference(split_df["path"].tolist(), model_predictor(model, modality, media_cfg),
                           lambda p: load_sample(p, modality, media_cfg), modality, media_cfg)  # fmt: skip


def _train(
    split_df: pd.DataFrame,
    labels: list[str],
    modality: str,
    media_cfg: dict[str, Any],
    epochs: int,
    seed: int,
    path: Path,
) -> None:
    """A small model on the benchmark's own samples (untimed), saved where the scoring side loads it."""
    index = {label: k for k, label in enumerate(labels)}
    x = load_inputs(split_df["path"].tolist(), modality, {modality: media_cfg})
    y = np.array([index[v] for v in split_df["label"]])
    cfg = TRAIN_CFG | {"epochs": epochs, "media": media_cfg}
    result = train_model(x, y, x[:64], y[:64], labels, modality, cfg, seed, progress=False)
    save_model(result, path, {"benchmark": "augment_throughput"})


def _audio_setup(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict, list[str]] | None:
    """FSDD clips, the noise table, the policies, media settings and labels; None when the data is absent."""
    fsdd, noise_dir = SHARED / "fsdd", SHARED / "noise"
    if not (fsdd / "metadata.csv").is_file() or not (noise_dir / "metadata.csv").is_file():
        print(f"audio: FSDD or noise not found under {SHARED}: skipped")
        return None
    block = example_block("fsdd")
    meta = pd.read_csv(fsdd / "metadata.csv", dtype={"label": str})
    meta = meta[meta["official_split"] == "train"].sort_values("path").reset_index(drop=True)
    meta = meta.iloc[np.sort(generator(seed, "benchmark", "audio").choice(len(meta), n, replace=False))]
    split_df = pd.DataFrame({"id": meta["path"], "path": [str(fsdd / p) for p in meta["path"]],
                             "label": meta["label"], "speaker": meta["speaker"], "split": "train"})  # fmt: skip
    nmeta = pd.read_csv(noise_dir / "metadata.csv")
    noise = pd.DataFrame({"id": nmeta["path"], "path": [str(noise_dir / p) for p in nmeta["path"]],
                          "group": nmeta["group"], "pool": nmeta["pool"]})  # fmt: skip
    policies = {t: [*spec, GAIN] for t, spec in block["augment"]["policies"].items()}
    return split_df.reset_index(drop=True), noise, policies, block["media"], [str(v) for v in block["labels"]]


def _image_setup(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict, list[str]] | None:
    """Roman-numeral images, no noise, the digits policies, media settings and labels; None when absent."""
    roman = SHARED / "roman"
    if not (roman / "metadata.csv").is_file():
        print(f"image: Roman numerals not found under {SHARED}: skipped")
        return None
    digits = yaml.safe_load((ROOT / "params.yaml").read_text())["datasets"]["digits"]
    block = example_block("roman")
    meta = pd.read_csv(roman / "metadata.csv", dtype={"label": str})
    meta = meta[meta["split"] == "train"].sort_values("path").reset_index(drop=True)
    meta = meta.iloc[np.sort(generator(seed, "benchmark", "image").choice(len(meta), n, replace=False))]
    split_df = pd.DataFrame({"id": meta["path"], "path": [str(roman / p) for p in meta["path"]],
                             "label": meta["label"], "split": "train"})  # fmt: skip
    return (
        split_df.reset_index(drop=True),
        pd.DataFrame(),
        digits["augment"]["policies"],
        block["media"],
        [str(v) for v in block["labels"]],
    )


def bench(modality: str, setup: Callable[[int, int], Any], args: argparse.Namespace) -> None:
    """Time both sides `args.runs` times on the same inputs and print medians, ratio and the verdict."""
    ready = setup(args.samples, args.seed)
    if ready is None:
        return
    split_df, noise, policies, media_cfg, labels = ready
    targets = [{"slice": t, "priority": 1.0} for t in policies]
    allocation = allocate_budget({t: 1.0 for t in policies}, len(split_df))
    by_id = split_df.set_index("id")["path"]
    jobs = [(by_id[s], t) for t, c in allocation.items() for s in pick_sources(split_df, c, args.seed, t)]
    raw_times: list[float] = []
    our_times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="augment_throughput_") as tmp:
        model_path = Path(tmp) / "model.pt"
        _train(split_df, labels, modality, media_cfg, args.epochs, args.seed, model_path)
        start = time.perf_counter()
        reference = _reference(split_df, modality, media_cfg, model_path)
        reference_s = time.perf_counter() - start
        for k in range(-args.warmup, args.runs):  # negative k: untimed warm-up (imports, caches, first calls)
            raw_t = run_raw(jobs, policies, modality, media_cfg, noise, args.seed, Path(tmp) / f"raw{k}")
            ours_t = run_ours(split_df, noise, targets, policies, modality, media_cfg, args.seed,
                              Path(tmp) / f"ours{k}", model_path, reference)  # fmt: skip
            if k >= 0:
                raw_times.append(raw_t)
                our_times.append(ours_t)
                print(f"{modality} run {k + 1}: raw {raw_t:.2f} s; ours {ours_t:.2f} s (ratio {raw_t / ours_t:.2f})")
    n = len(jobs)
    raw = n / statistics.median(raw_times)
    ours = n / statistics.median(our_times)
    ratio = ours / raw
    paired = statistics.median(r / o for r, o in zip(raw_times, our_times, strict=True))
    print(
        f"{modality}: {n} samples x {len(policies)} policies, medians of {args.runs} runs: raw {raw:.1f} samples/s; "
        f"ours (made and scored) {ours:.1f} samples/s; ratio {ratio:.2f} (median of the runs' own ratios "
        f"{paired:.2f}; target >= {TARGET:.2f}: "
        f"{'met' if ratio >= TARGET else 'NOT met'}); the checklist reference of the {len(reference.paths)} real "
        f"samples took {reference_s:.2f} s once per model (the reference stage, not timed above)"
    )


def main() -> int:
    """Run the benchmark; exit 0 having printed the numbers, or 0 with a note when the data is absent."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--modality", nargs="+", choices=["audio", "image"], default=["audio", "image"])
    parser.add_argument("--epochs", type=int, default=3, help="epochs of the (untimed) model the checklist uses")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs of both sides first")
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"real data not found at {SHARED}: nothing to time")
        return 0
    setups = {"audio": _audio_setup, "image": _image_setup}
    for modality in args.modality:
        bench(modality, setups[modality], args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
