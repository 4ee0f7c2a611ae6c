"""The augmentation checklist: is a candidate realistic, is x -> y still clear, is the model weak on it?

Every score lies in [0, 1]:
- realism: how typical the candidate is of real data (the training data and the real examples of the slice it
  targets), seen two ways; the score is the smaller of the two, and `least_typical` names what made it small:
  - quality statistics: per statistic, the two-sided tail probability under the real data's empirical
    distribution, 2 * min(F(x), 1 - F(x)), the smallest over statistics. A candidate darker, quieter, noisier or
    more clipped than any real sample scores about 2 / n.
  - embedding: how the current model sees it. The distance d of the candidate's penultimate features to their
    k-th nearest real sample (Euclidean, features standardised by the real samples), against the same distance
    of every real sample to its k-th nearest other: (#{real distances >= d} + 1) / (n + 1), the conformal
    p-value of d. A candidate farther from the real data than every real sample is from the rest scores
    1 / (n + 1) (`least_typical` "embedding"); one the model sees like a typical real sample, near 1. It catches
    what no statistic names: content unlike anything real, at ordinary levels.
- clarity: the probability that the label is still recognisable. The reference recognizer (the baseline model,
  trained on clean data) must give the intended label to the clean source, and the candidate must keep the
  source's content: clarity = p_ref(y | source) x retention, retention = correlation of source and candidate
  in a contrast- and level-invariant representation (standardised pixels; standardised log-mel). For 8-bit
  pixels it is computed from exact integer sums.
- weakness: 1 - p_model(y | candidate) under the current model: 0 if the model is certain and right already.

Verdicts: `reject` (not realistic, or clarity below `clarity_reject`), `easy` (weakness below `weakness_min`:
the model does not need it), `review` (clarity between the two thresholds: a labeler decides), `accept`.

Cost: what depends only on the model and the real data (the real samples' statistics, features and
probabilities) is a `Reference`, built once per model by the reference stage. `Checklist.score` then takes the
candidates in batches while they are still in memory (the augment stage scores as it generates): one model
pass over the batch, statistics and retention in one vectorised pass per group of equally shaped samples, and
no file read back. Scores are of the pipeline's float output; the files hold it as 16-bit PCM (audio, a
difference below -90 dB) or exactly (8-bit images).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

import cv2
import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from curation.features import log_mel, to_inputs
from curation.io import atomic_path
from curation.models import SmallCNN
from curation.slices import slice_mask
from curation.train import inference_copy, probs_and_features

AUDIO_STATS = ("rms_db", "peak", "clip_frac", "silence_frac", "centroid_hz", "flatness")
IMAGE_STATS = ("mean", "std", "sharpness")
VERDICTS = ("accept", "review", "easy", "reject")
SCORE_COLUMNS = ("id", "target_slice", "label", "source_id", "path", "realism", "least_typical", "embedding_realism",
                 "p_source", "retention", "clarity", "p_model", "weakness", "predicted")  # fmt: skip
EMBEDDING = "embedding"  # `least_typical` when the embedding realism is the smaller one
SPECTRUM_SECONDS = 0.032  # Welch frame of the audio spectrum statistics (256 samples at 8 kHz)
EMBED_K = 5  # the k of the k-th nearest real sample in embedding realism
EMBED_STD_FLOOR = 0.01  # features are divided by at least this share of the widest feature's spread
DISTANCE_CHUNK = 1024  # query rows per distance block (bounded memory)
REFERENCE_BATCH = 256  # real files decoded and run through the model at a time when building a Reference
MEL_CHUNK = 32  # clips per log-mel call in retention (sorted by length, so little padding)
REFERENCE_MEL_BYTES = 256 * 2**20  # the real samples' retention log-mels a `Reference` keeps, at most
SOURCE_CACHE_BYTES = 256 * 2**20  # sources' retention representations kept across batches (`Checklist`)
EXACT_PIXELS = 2**31 - 1  # OpenCV's element limit for 8-bit sums (beyond, sumElems gives 0 and norm refuses)
STATS_CHUNK = 32  # clips per vectorised statistics pass: its temporaries stay small (twice as fast as 256 at once)

Predict = Callable[[Sequence[np.ndarray]], tuple[np.ndarray, np.ndarray]]


def _image_stats(grey: np.ndarray) -> tuple[float, float, float]:
    """Mean, standard deviation and Laplacian variance (interior pixels) of one grey image, with OpenCV: the
    same numbers as the numpy expressions, a few times faster. 8-bit pixels give an integer Laplacian within
    +-2040, exact in int16."""
    depth = cv2.CV_16S if grey.dtype == np.uint8 else cv2.CV_64F
    mean, std = cv2.meanStdDev(grey)
    lap = cv2.Laplacian(grey, depth, ksize=1)[1:-1, 1:-1]
    _, lap_std = cv2.meanStdDev(np.ascontiguousarray(lap))
    return float(mean[0, 0]), float(std[0, 0]), float(lap_std[0, 0]) ** 2


def _audio_stats(clips: Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
    """AUDIO_STATS of clips of any lengths, one row each, in one vectorised pass over their concatenation.

    Level, peak and clipping over the whole clip; silence: the share of 20 ms frames below -50 dBFS (a clip
    shorter than a frame is one frame); spectrum: the Welch power spectrum, Hann frames of SPECTRUM_SECONDS (a
    power of two of samples) half overlapping, their power averaged (a clip shorter than a frame zero-padded to
    one). Averaging frames gives a stable estimate whose FFT size does not depend on the clip's length. Every
    row is computed from its own clip alone, so a clip's statistics do not depend on the others in the call.

    Each clip starts on a common grid (a multiple of both frame steps) in the concatenation, so that every frame
    is a row of one strided view of it: no per-sample gather.
    """
    lengths = np.array([len(c) for c in clips])
    if (lengths == 0).any():
        raise ValueError(f"audio clip {int(np.argmax(lengths == 0))} has no samples")
    n_fft = 1 << max(int(np.ceil(np.log2(SPECTRUM_SECONDS * sample_rate))), 1)
    hop, frame = n_fft // 2, max(int(0.02 * sample_rate), 1)
    grid = math.lcm(hop, frame)
    slots = -(-np.maximum(lengths, n_fft) // grid) * grid  # each clip's room, zero beyond its samples
    starts = np.concatenate([[0], np.cumsum(slots)[:-1]])
    a = np.zeros(int(slots.sum()))
    for s, c in zip(starts, clips, strict=True):
        a[s : s + len(c)] = c
    square, magnitude = np.square(a), np.abs(a)
    # silence: 20 ms frames are rows of `square` cut in frames; a clip shorter than one is its single frame
    per_clip = np.maximum(lengths // frame, 1)
    first = np.concatenate([[0], np.cumsum(per_clip)[:-1]])
    clip_of = np.repeat(np.arange(len(clips)), per_clip)
    rows = starts[clip_of] // frame + np.arange(per_clip.sum()) - first[clip_of]
    frame_power = square.reshape(-1, frame).sum(axis=1)[rows] / np.minimum(lengths, frame)[clip_of]
    silent = np.add.reduceat((10 * np.log10(frame_power + 1e-12) < -50.0).astype(float), first) / per_clip
    # spectrum: Hann frames hop apart are rows of a strided view; their power averaged per clip
    windows = 1 + (np.maximum(lengths, n_fft) - n_fft) // hop
    w_first = np.concatenate([[0], np.cumsum(windows)[:-1]])
    w_clip = np.repeat(np.arange(len(clips)), windows)
    w_rows = starts[w_clip] // hop + np.arange(windows.sum()) - w_first[w_clip]
    frames = np.lib.stride_tricks.sliding_window_view(a, n_fft)[::hop][w_rows]  # a gathered copy
    frames *= np.hanning(n_fft)  # in place, as every temporary below: they are megabytes per chunk
    spectrum = np.fft.rfft(frames, axis=1)
    power = np.square(spectrum.real)
    power += np.square(spectrum.imag)
    power = np.add.reduceat(power, w_first, axis=0) / windows[:, None] + 1e-12
    freqs = np.fft.rfftfreq(n_fft, 1 / sample_rate)
    return np.column_stack([
        10 * np.log10(np.add.reduceat(square, starts) / lengths + 1e-12),  # the zero room adds nothing
        np.maximum.reduceat(magnitude, starts),
        np.add.reduceat((magnitude >= 0.999).astype(float), starts) / lengths,
        silent,
        np.sum(freqs * power, axis=1) / np.sum(power, axis=1),
        np.exp(np.mean(np.log(power), axis=1)) / np.mean(power, axis=1),
    ])  # fmt: skip


def _image_stats_stack(x: np.ndarray) -> np.ndarray:
    """IMAGE_STATS of a stack of equally shaped images (axis 0), one row each."""
    grey = x.mean(axis=3) if x.ndim == 4 else x
    return np.array([_image_stats(g) for g in grey]).reshape(-1, 3)


def quality_stats(x: np.ndarray, modality: str, sample_rate: int | None = None) -> dict[str, float]:
    """Quality statistics of one sample: level, clipping, silence and spectrum for audio; exposure,
    contrast and sharpness for images."""
    return {k: float(v) for k, v in stats_table([x], modality, sample_rate).iloc[0].items()}


def _by_shape(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Positions of the arrays grouped by shape (each group can be stacked and processed in one pass)."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, x in enumerate(arrays):
        groups.setdefault(x.shape, []).append(i)
    return [np.array(idx) for idx in groups.values()]


def stats_table(arrays: Sequence[np.ndarray], modality: str, sample_rate: int | None = None) -> pd.DataFrame:
    """`quality_stats` of many samples as a table (one row per sample, in order): audio in vectorised passes of
    STATS_CHUNK clips (a row depends on its own clip alone), images per shape."""
    if modality == "audio":
        if sample_rate is None:
            raise ValueError("audio quality statistics need the sample rate")
        parts = [_audio_stats(arrays[i : i + STATS_CHUNK], sample_rate) for i in range(0, len(arrays), STATS_CHUNK)]
        out = np.concatenate(parts) if parts else np.empty((0, len(AUDIO_STATS)))
        return pd.DataFrame(out, columns=list(AUDIO_STATS))
    out = np.empty((len(arrays), len(IMAGE_STATS)))
    for idx in _by_shape(arrays):
        out[idx] = _image_stats_stack(np.stack([arrays[i] for i in idx]))
    return pd.DataFrame(out, columns=list(IMAGE_STATS))


def _tails(candidates: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Two-sided empirical tail probabilities (m, s) of m candidates' s statistics under n reference rows."""
    if len(reference) == 0:
        raise ValueError("realism needs real reference samples; the reference set is empty")
    return _sorted_tails(candidates, np.sort(reference, axis=0))


def _sorted_tails(candidates: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """`_tails` under a reference whose columns are already sorted (each sorted once, however many batches)."""
    n = len(ref)
    tails = np.empty(candidates.shape)
    for j in range(ref.shape[1]):
        below = np.searchsorted(ref[:, j], candidates[:, j], side="right")
        above = n - np.searchsorted(ref[:, j], candidates[:, j], side="left")
        tails[:, j] = 2 * np.minimum(below + 1, above + 1) / (n + 2)
    return np.clip(tails, 0.0, 1.0)


def realism(candidates: pd.DataFrame, reference: pd.DataFrame) -> np.ndarray:
    """Per candidate, the smallest two-sided empirical tail probability of its statistics under `reference`."""
    columns = list(reference.columns)
    tails = _tails(candidates[columns].to_numpy(dtype=float), reference.to_numpy(dtype=float))
    return tails.min(axis=1, initial=1.0)


def _kth_nearest(queries: np.ndarray, points: np.ndarray, k: int, leave_one_out: bool = False) -> np.ndarray:
    """Euclidean distance of every query row to its k-th nearest row of `points`; with `leave_one_out` the
    queries are `points` themselves and each row's distance to itself does not count."""
    sq_points = np.einsum("ij,ij->i", points, points)
    out = np.empty(len(queries))
    for start in range(0, len(queries), DISTANCE_CHUNK):
        q = queries[start : start + DISTANCE_CHUNK]
        d2 = np.einsum("ij,ij->i", q, q)[:, None] + sq_points[None, :] - 2.0 * (q @ points.T)
        if leave_one_out:
            d2[np.arange(len(q)), np.arange(start, start + len(q))] = np.inf
        out[start : start + len(q)] = np.partition(d2, k - 1, axis=1)[:, k - 1]
    return np.sqrt(np.maximum(out, 0.0))


class EmbeddingReference:
    """The real samples' embeddings, fitted once for `embedding_realism`: their standardisation and the sorted
    leave-one-out distance of each to its k-th nearest other (the O(n^2) part, paid once per reference set)."""

    def __init__(self, reference: np.ndarray, k: int = EMBED_K) -> None:
        n = len(reference)
        if n < 2:
            raise ValueError(f"embedding realism needs at least 2 real reference samples, got {n}")
        self.k = min(k, n - 1)
        ref = reference.astype(np.float64)
        self.mean, spread = ref.mean(axis=0), ref.std(axis=0)
        self.scale = np.maximum(spread, EMBED_STD_FLOOR * spread.max()) if spread.max() > 0 else np.ones_like(spread)
        self.z_ref = (ref - self.mean) / self.scale
        self.distances = np.sort(_kth_nearest(self.z_ref, self.z_ref, self.k, leave_one_out=True))

    def pvalues(self, candidates: np.ndarray) -> np.ndarray:
        """The conformal p-value of each candidate embedding (row): see `embedding_realism`."""
        z = (candidates.astype(np.float64) - self.mean) / self.scale
        n = len(self.distances)
        at_least = n - np.searchsorted(self.distances, _kth_nearest(z, self.z_ref, self.k), side="left")
        return (at_least + 1) / (n + 1)


def embedding_realism(candidates: np.ndarray, reference: np.ndarray, k: int = EMBED_K) -> np.ndarray:
    """Per candidate embedding (row), the conformal p-value of its distance d to the k-th nearest reference
    embedding: (#{reference samples whose k-th nearest other reference sample is at least d away} + 1) / (n + 1).

    Features are centred on the reference and divided by its per-feature standard deviation, floored at
    EMBED_STD_FLOOR of the largest (a unit the real data hardly uses must not dominate the distance).
    k is capped at n - 1. Raises ValueError with fewer than 2 reference samples.
    """
    return EmbeddingReference(reference, k).pvalues(candidates)


def _log_mels(arrays: Sequence[np.ndarray], media_cfg: dict[str, Any]) -> list[np.ndarray]:
    """The log-mel (flattened) of each clip, in order, equal to `log_mel` of that clip alone, but MEL_CHUNK clips
    per call (one call per clip length costs more than the spectra themselves).

    In a chunk each clip is followed by the mirror image `log_mel`'s centred STFT pads it with (reflect, n_fft // 2
    samples), then zeros to the longest: its own frames read exactly what they read alone; later ones are dropped.
    """
    n_fft, hop = int(media_cfg["n_fft"]), int(media_cfg["hop"])
    half = n_fft // 2
    order = sorted(range(len(arrays)), key=lambda i: len(arrays[i]))
    out: list[np.ndarray] = [np.empty(0, np.float32)] * len(arrays)
    for start in range(0, len(order), MEL_CHUNK):
        chunk = order[start : start + MEL_CHUNK]
        longest = len(arrays[chunk[-1]])
        padded = np.zeros((len(chunk), longest + half), dtype=np.float32)
        for row, i in enumerate(chunk):
            x = arrays[i]
            if len(x) <= half:
                raise ValueError(f"a clip of {len(x)} samples is too short for a log-mel with n_fft={n_fft}")
            padded[row, : len(x)] = x
            padded[row, len(x) : len(x) + half] = x[-2::-1][:half]
        mel = log_mel(torch.from_numpy(padded), media_cfg["sample_rate"], n_fft, hop, media_cfg["n_mels"]).numpy()
        for row, i in enumerate(chunk):
            frames = 1 + (len(arrays[i]) + 2 * half - n_fft) // hop
            out[i] = mel[row, :, :frames].ravel()
    return out


def _mel_settings(media_cfg: dict[str, Any]) -> tuple[int, ...]:
    """What a retention log-mel depends on: (sample_rate, n_fft, hop, n_mels)."""
    return tuple(int(media_cfg[k]) for k in ("sample_rate", "n_fft", "hop", "n_mels"))


class _Centred(NamedTuple):
    """A float representation (flattened) minus its mean, in float64, and its norm."""

    values: np.ndarray
    norm: float


class _Pixels(NamedTuple):
    """8-bit pixels (flattened, a copy) with their exact sum and sum of squares."""

    values: np.ndarray
    total: int
    squares: int


def _pixel_sum(value: float) -> int:
    """A sum of up to EXACT_PIXELS 8-bit values or of their squares (< 2**47), as OpenCV returns it: a double
    (a sum of squares by way of the norm, squared back: off by ~1e-16 of it), so rounding gives it exactly."""
    return round(value)


def _centred(x: np.ndarray) -> _Centred:
    """x (flattened, a float64 copy) minus its mean, and its norm."""
    c = x.astype(np.float64).ravel()  # a copy: centred in place
    c -= c.mean()
    return _Centred(c, float(np.sqrt(c @ c)))


def _term(x: np.ndarray) -> _Centred | _Pixels:
    """What `_correlation` needs of one representation, made once per sample. 8-bit pixels stay as they are,
    with their integer sums (`_pixel_sum`: no float copy of the image); anything else (log-mels, float pixels)
    is `_centred`. Either way the term owns its values (a kept source's cannot change under it)."""
    if x.dtype == np.uint8 and x.size <= EXACT_PIXELS:
        flat = x.flatten()  # a copy
        return _Pixels(flat, _pixel_sum(cv2.sumElems(flat)[0]), _pixel_sum(cv2.norm(flat, cv2.NORM_L2SQR)))
    return _centred(x)


def _representations(arrays: Sequence[np.ndarray], modality: str, media_cfg: dict[str, Any]) -> list[np.ndarray]:
    """What retention correlates, per array: its log-mel (flattened) for audio, its pixels for images."""
    return _log_mels(arrays, media_cfg) if modality == "audio" else list(arrays)


def _correlation(a: _Centred | _Pixels, b: _Centred | _Pixels) -> float:
    """The Pearson correlation of two `_term`s, clipped to [0, 1] (rounding can take a sample's correlation
    with itself just past 1); 0 when either is constant.

    Two 8-bit terms: from exact integer sums (the cross sum from the squared distance); only the final square
    root and division round. Otherwise: the dot product of the centred values over the product of their norms
    (an 8-bit term paired with a float one is centred first)."""
    if a.values.shape != b.values.shape:
        raise ValueError(f"retention compares equally shaped samples, got {a.values.shape} and {b.values.shape}")
    if isinstance(a, _Pixels) and isinstance(b, _Pixels):
        n = a.values.size
        cross = (a.squares + b.squares - _pixel_sum(cv2.norm(a.values, b.values, cv2.NORM_L2SQR))) // 2
        spread = (n * a.squares - a.total**2) * (n * b.squares - b.total**2)
        return 0.0 if spread == 0 else min(max((n * cross - a.total * b.total) / math.sqrt(spread), 0.0), 1.0)
    ca, cb = (t if isinstance(t, _Centred) else _centred(t.values) for t in (a, b))
    if ca.norm == 0 or cb.norm == 0:
        return 0.0
    return min(max(float(ca.values @ cb.values) / (ca.norm * cb.norm), 0.0), 1.0)


def retention(source: np.ndarray, candidate: np.ndarray, modality: str, media_cfg: dict[str, Any]) -> float:
    """Correlation in [0, 1] of source and candidate after standardisation (pixels, or log-mel for audio)."""
    a, b = _representations([source, candidate], modality, media_cfg)
    return _correlation(_term(a), _term(b))


def judge(r: Any, thresholds: dict[str, float]) -> tuple[str, str]:
    """One candidate's verdict and the reason for it; the rules apply in order, the first that holds wins."""
    if r.realism < thresholds["realism_min"]:
        return "reject", f"not realistic: {r.least_typical} outside the real data (realism {r.realism:.3f})"
    if r.clarity < thresholds["clarity_reject"]:
        return "reject", f"label no longer clear (clarity {r.clarity:.2f})"
    if r.weakness < thresholds["weakness_min"]:
        return "easy", f"model already right and confident (weakness {r.weakness:.3f})"
    if r.clarity < thresholds["clarity_accept"]:
        return "review", f"ambiguous: clarity {r.clarity:.2f} between the thresholds"
    return "accept", "realistic, clear, and the model is weak on it"


def verdicts(scores: pd.DataFrame, thresholds: dict[str, float]) -> pd.DataFrame:
    """Add `verdict` and `reason` columns from the realism, clarity and weakness scores."""
    judged = [judge(r, thresholds) for r in scores.itertuples()]
    return scores.assign(verdict=[v for v, _ in judged], reason=[why for _, why in judged])


def least_typical(candidates: pd.DataFrame, reference: pd.DataFrame) -> list[str]:
    """Per candidate, the statistic with the smallest tail probability (what makes it unrealistic)."""
    columns = list(reference.columns)
    tails = _tails(candidates[columns].to_numpy(dtype=float), reference.to_numpy(dtype=float))
    return [columns[j] for j in tails.argmin(axis=1)]


def model_predictor(model: SmallCNN, modality: str, media_cfg: dict[str, Any]) -> Predict:
    """The model as `score_candidates` calls it: predict(decoded samples, as `conditions.load_sample` returns
    them) -> (class probabilities (N, C), penultimate features (N, D)), both from one forward pass, so that no
    file is read twice and the network runs once. The model is copied for inference once (`inference_copy`), not
    once per call: later changes to `model` do not reach the predictor."""
    network = inference_copy(model)

    def predict(arrays: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        return probs_and_features(network, to_inputs(arrays, modality, {modality: media_cfg}))

    return predict


@dataclass(frozen=True)
class Reference:
    """How the quality statistics and the current model see the real data, one row per distinct file: what every
    candidate is compared with. It depends on the model and the real files only, so the reference stage makes it
    once per model and every later scoring run (a new budget, new policies) reuses it."""

    paths: np.ndarray  # (N,) file paths
    stats: np.ndarray  # (N, S) quality statistics, columns `stat_names`
    features: np.ndarray  # (N, D) penultimate features
    probs: np.ndarray  # (N, C) class probabilities
    stat_names: tuple[str, ...]
    # audio: the source rows' retention log-mels (flattened, float32; other rows' empty) end to end, `mel_starts`
    # (N + 1,) where each lies, and the settings (sample_rate, n_fft, hop, n_mels) they were made with; None when
    # not kept
    mels: np.ndarray | None = None
    mel_starts: np.ndarray | None = None
    mel_settings: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        kept = [x is not None for x in (self.mels, self.mel_starts, self.mel_settings)]
        if any(kept) and not all(kept):
            raise ValueError("a checklist reference keeps log-mels with their starts and settings, or none of them")
        starts = self.mel_starts
        if starts is not None and (len(starts) != len(self.paths) + 1 or starts[-1] != len(self.mels)):
            raise ValueError(f"the reference's log-mel starts ({len(starts)}, ending at {starts[-1]}) do not fit "
                             f"its {len(self.paths)} rows and {len(self.mels)} values")  # fmt: skip

    def mel(self, row: int, media_cfg: dict[str, Any]) -> np.ndarray | None:
        """Row's retention log-mel, if kept and made with these media settings (else None: compute it)."""
        if self.mels is None or self.mel_starts is None or self.mel_settings != _mel_settings(media_cfg):
            return None
        mel = self.mels[self.mel_starts[row] : self.mel_starts[row + 1]]
        return mel if mel.size else None  # not a source, or a clip too short for a log-mel: none kept

    @cached_property
    def _position(self) -> dict[str, int]:
        """Each path's row, built once (the augment stage looks up every batch's sources)."""
        return {p: k for k, p in enumerate(self.paths.tolist())}

    def rows(self, paths: Sequence[str]) -> np.ndarray:
        """Positions of `paths`; a ValueError names the first that the reference does not hold."""
        position = self._position
        missing = [p for p in paths if p not in position]
        if missing:
            raise ValueError(f"{len(missing)} file(s) are not in the checklist reference, e.g. {missing[0]!r}; "
                             "rebuild it (the reference stage) for the current real data")  # fmt: skip
        return np.array([position[p] for p in paths], dtype=int)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the reference atomically as .npz (plain arrays: loads without pickle)."""
        mels = {} if self.mels is None else {"mels": self.mels, "mel_starts": self.mel_starts,
                                             "mel_settings": np.array(self.mel_settings)}  # fmt: skip
        with atomic_path(path) as tmp, tmp.open("wb") as f:
            np.savez(f, paths=self.paths.astype(str), stats=self.stats, features=self.features, probs=self.probs,
                     stat_names=np.array(self.stat_names, dtype=str), **mels)  # fmt: skip

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Reference:
        """A reference written by `save` (one written without log-mels loads without them)."""
        with np.load(path, allow_pickle=False) as z:
            kept = "mels" in z.files
            return cls(z["paths"], z["stats"], z["features"], z["probs"], tuple(z["stat_names"].tolist()),
                       z["mels"] if kept else None, z["mel_starts"] if kept else None,
                       tuple(z["mel_settings"].tolist()) if kept else None)  # fmt: skip


def build_reference(
    paths: Sequence[str],
    predict: Predict,
    load: Callable[[str], np.ndarray],
    modality: str,
    media_cfg: dict[str, Any],
    batch: int = REFERENCE_BATCH,
    sources: Set[str] | None = None,
) -> Reference:
    """The `Reference` of the real files `paths` (each distinct file once, in first-seen order): decoded,
    measured and run through the model `batch` files at a time (bounded memory), with a progress bar.

    For audio it also keeps the retention log-mel of each file candidates may be made from (`sources`, default
    every file) while they take at most REFERENCE_MEL_BYTES (beyond, none): scoring then computes no source's
    log-mel. They depend on the files alone, but are made here because the reference is made once and read by
    every augment run."""
    unique = list(dict.fromkeys(paths))
    if not unique:
        raise ValueError("the checklist reference needs real samples; none were given")
    stats, features, probs = [], [], []
    mels: list[np.ndarray] | None = [] if modality == "audio" else None
    mel_bytes = 0
    half = int(media_cfg["n_fft"]) // 2 if mels is not None else 0  # a clip this short has no log-mel
    for start in tqdm(range(0, len(unique), batch), desc="checklist reference", unit="batch", leave=False):
        arrays = [load(p) for p in unique[start : start + batch]]
        stats.append(stats_table(arrays, modality, media_cfg.get("sample_rate")).to_numpy())
        p, f = predict(arrays)
        probs.append(p)
        features.append(f)
        if mels is not None:  # (as a source, a clip without one is refused by scoring, as before)
            wanted = [len(x) > half and (sources is None or path in sources)
                      for path, x in zip(unique[start : start + batch], arrays, strict=True)]  # fmt: skip
            made = iter(_log_mels([x for x, w in zip(arrays, wanted, strict=True) if w], media_cfg))
            batch_mels = [next(made) if w else np.empty(0, np.float32) for w in wanted]
            mel_bytes += sum(m.nbytes for m in batch_mels)
            if mel_bytes > REFERENCE_MEL_BYTES:
                mels = None
            else:
                mels += batch_mels
    names = IMAGE_STATS if modality == "image" else AUDIO_STATS
    kept = {} if mels is None else {
        "mels": np.concatenate(mels), "mel_starts": np.cumsum([0, *(m.size for m in mels)]),
        "mel_settings": _mel_settings(media_cfg)}  # fmt: skip
    return Reference(np.array(unique, dtype=str), np.concatenate(stats), np.concatenate(features),
                     np.concatenate(probs), names, **kept)  # fmt: skip


@dataclass(frozen=True)
class _TargetReference:
    """One target slice's reference rows, prepared once: sorted statistics and fitted embeddings."""

    sorted_stats: np.ndarray
    embedding: EmbeddingReference


class Checklist:
    """Scores candidates (realism, clarity, weakness) under the current model against a `Reference`.

    `real` holds the real samples (the training data and the real dev examples of each slice, with their
    `split`, `path` and slice columns): a target slice's reference is the training data plus the slice's own
    real examples. `source_paths` maps each source id to its file (the sources are training samples, so the
    reference holds them and the reference recognizer's p(y | source) is looked up, not recomputed).
    `predict(arrays) -> (probabilities (N, C), features (N, D))` is the current model (`model_predictor`).
    `score` takes candidates batch by batch, with their arrays in memory: the augment stage scores candidates
    as it makes them, so no file is read back.
    """

    def __init__(
        self,
        reference: Reference,
        real: pd.DataFrame,
        source_paths: dict[str, str],
        labels: list[str],
        predict: Predict,
        modality: str,
        media_cfg: dict[str, Any],
    ) -> None:
        self.reference, self.real, self.source_paths = reference, real, source_paths
        self.index_of = {label: k for k, label in enumerate(labels)}
        self.predict, self.modality, self.media_cfg = predict, modality, media_cfg
        self._train = (real["split"] == "train").to_numpy()
        self._targets: dict[str, _TargetReference] = {}
        self._prepared: dict[bytes, _TargetReference] = {}  # by reference rows: targets with the same rows share
        self._sources: dict[str, _Centred | _Pixels] = {}  # kept `_term`s, by source id
        self._sources_bytes = 0

    def _target(self, target: str) -> _TargetReference:
        """The target slice's prepared reference, built on first use; targets whose reference rows are the same
        (no real examples of their own beyond the training data) share one, fitted once."""
        if target not in self._targets:
            paths = self.real.loc[self._train | slice_mask(self.real, target).to_numpy(), "path"]
            rows = self.reference.rows(paths.tolist())
            if len(rows) == 0:
                raise ValueError(f"realism for {target!r} needs real reference samples; the reference set is empty")
            key = rows.tobytes()
            if key not in self._prepared:
                stats = np.sort(self.reference.stats[rows], axis=0)
                self._prepared[key] = _TargetReference(stats, EmbeddingReference(self.reference.features[rows]))
            self._targets[target] = self._prepared[key]
        return self._targets[target]

    def _retentions(
        self,
        source_ids: Sequence[str],
        source_rows: np.ndarray,
        sources: Sequence[np.ndarray],
        outputs: Sequence[np.ndarray],
    ) -> np.ndarray:
        """Each candidate's `retention` of its source (`source_rows`: its row in the reference). A source's
        representation is the reference's log-mel when it keeps one, else made here; either way once, and kept
        for the source's later candidates, in this batch and the next (a source has several), while the kept ones
        take at most SOURCE_CACHE_BYTES. A source id's array is taken to be its file's, the same in every batch.
        Candidates' representations are made in one pass and their `_term`s one at a time (bounded memory)."""
        n = len(outputs)
        first: dict[str, int] = {}
        for k, s in enumerate(source_ids):
            first.setdefault(s, k)
        stored = {s: self.reference.mel(int(source_rows[k]), self.media_cfg) for s, k in first.items()
                  if s not in self._sources}  # fmt: skip
        new = [s for s, rep in stored.items() if rep is None]
        reps = _representations([*outputs, *(sources[first[s]] for s in new)], self.modality, self.media_cfg)
        made = dict(zip(new, reps[n:], strict=True))
        fresh = {s: _term(made[s] if rep is None else rep) for s, rep in stored.items()}
        for s, term in fresh.items():
            if self._sources_bytes + term.values.nbytes <= SOURCE_CACHE_BYTES:
                self._sources[s] = term
                self._sources_bytes += term.values.nbytes
        return np.array([_correlation(fresh[s] if s in fresh else self._sources[s], _term(reps[k]))
                         for k, s in enumerate(source_ids)])  # fmt: skip

    def score(
        self, candidates: pd.DataFrame, sources: Sequence[np.ndarray], outputs: Sequence[np.ndarray]
    ) -> pd.DataFrame:
        """Realism, clarity and weakness of each candidate (rows of `candidates`: id, target_slice, label,
        source_id, path), given its source's array and its own, in the same order."""
        n = len(candidates)
        if len(sources) != n or len(outputs) != n:
            raise ValueError(f"{n} candidates need {n} sources and {n} outputs, got {len(sources)} and {len(outputs)}")
        if n == 0:
            return empty_scores()
        probs, features = self.predict(outputs)
        stats = stats_table(outputs, self.modality, self.media_cfg.get("sample_rate")).to_numpy()
        names = np.array(self.reference.stat_names)
        realism_score, embedding_score = np.ones(n), np.ones(n)
        weakest = np.array([""] * n, dtype=object)
        for target, idx in candidates.groupby("target_slice").indices.items():
            ref = self._target(str(target))
            tails = _sorted_tails(stats[idx], ref.sorted_stats)
            by_stats, by_embedding = tails.min(axis=1), ref.embedding.pvalues(features[idx])
            realism_score[idx] = np.minimum(by_stats, by_embedding)
            embedding_score[idx] = by_embedding
            weakest[idx] = np.where(by_embedding < by_stats, EMBEDDING, names[tails.argmin(axis=1)])
        label_index = np.array([self.index_of[label] for label in candidates["label"]], dtype=int)
        p_candidate = probs[np.arange(n), label_index]
        src_rows = self.reference.rows([self.source_paths[s] for s in candidates["source_id"]])
        p_source = self.reference.probs[src_rows, label_index]
        kept = self._retentions(candidates["source_id"].tolist(), src_rows, sources, outputs)
        scores = pd.DataFrame(
            {
                "id": candidates["id"].to_numpy(),
                "target_slice": candidates["target_slice"].to_numpy(),
                "label": candidates["label"].to_numpy(),
                "source_id": candidates["source_id"].to_numpy(),
                "path": candidates["path"].to_numpy(),
                "realism": realism_score,
                "least_typical": weakest,
                "embedding_realism": embedding_score,
                "p_source": p_source,
                "retention": kept,
                "clarity": p_source * kept,
                "p_model": p_candidate,
                "weakness": 1.0 - p_candidate,
                "predicted": probs.argmax(axis=1),
            }
        )
        return scores[list(SCORE_COLUMNS)]


def empty_scores() -> pd.DataFrame:
    """The table `Checklist.score` returns, with no candidate in it (no target had a budget)."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in SCORE_COLUMNS})
