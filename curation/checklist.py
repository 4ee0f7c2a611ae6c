"""The augmentation checklist: is a candidate realistic, is x -> y still clear, is the model weak on it?

Every score lies in [0, 1]:
- realism: how typical the candidate's quality statistics are of real data (the training data and the real
  examples of the slice it targets). Per statistic, the two-sided tail probability under the real data's
  empirical distribution, 2 * min(F(x), 1 - F(x)); the score is the smallest over statistics. A candidate
  darker, quieter, noisier or more clipped than any real sample scores about 2 / n.
- clarity: the probability that the label is still recognisable. The reference recognizer (the baseline model,
  trained on clean data) must give the intended label to the clean source, and the candidate must keep the
  source's content: clarity = p_ref(y | source) x retention, retention = correlation of source and candidate
  in a contrast- and level-invariant representation (standardised pixels; standardised log-mel).
- weakness: 1 - p_model(y | candidate) under the current model: 0 if the model is certain and right already.

Verdicts: `reject` (not realistic, or clarity below `clarity_reject`), `easy` (weakness below `weakness_min`:
the model does not need it), `review` (clarity between the two thresholds: a labeler decides), `accept`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from curation.features import log_mel
from curation.slices import slice_mask

AUDIO_STATS = ("rms_db", "peak", "clip_frac", "silence_frac", "centroid_hz", "flatness")
IMAGE_STATS = ("mean", "std", "sharpness")
VERDICTS = ("accept", "review", "easy", "reject")


def quality_stats(x: np.ndarray, modality: str, sample_rate: int | None = None) -> dict[str, float]:
    """Quality statistics of one sample: level, clipping, silence and spectrum for audio; exposure,
    contrast and sharpness for images."""
    if modality == "image":
        img = x.astype(np.float64)
        grey = img.mean(axis=2) if img.ndim == 3 else img
        lap = grey[1:-1, 1:-1] * 4 - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:]
        return {"mean": float(grey.mean()), "std": float(grey.std()), "sharpness": float(lap.var())}
    if sample_rate is None:
        raise ValueError("audio quality statistics need the sample rate")
    a = x.astype(np.float64)
    frame = max(int(0.02 * sample_rate), 1)
    n = len(a) // frame
    frames = a[: n * frame].reshape(n, frame) if n else a[None, :]
    frame_db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    power = np.abs(np.fft.rfft(a)) ** 2 + 1e-12
    freqs = np.fft.rfftfreq(len(a), 1 / sample_rate)
    return {
        "rms_db": float(10 * np.log10(np.mean(a**2) + 1e-12)),
        "peak": float(np.max(np.abs(a))),
        "clip_frac": float(np.mean(np.abs(a) >= 0.999)),
        "silence_frac": float(np.mean(frame_db < -50.0)),
        "centroid_hz": float(np.sum(freqs * power) / np.sum(power)),
        "flatness": float(np.exp(np.mean(np.log(power))) / np.mean(power)),
    }


def realism(candidates: pd.DataFrame, reference: pd.DataFrame) -> np.ndarray:
    """Per candidate, the smallest two-sided empirical tail probability of its statistics under `reference`."""
    if reference.empty:
        raise ValueError("realism needs real reference samples; the reference set is empty")
    n = len(reference)
    scores = np.ones(len(candidates))
    for col in reference.columns:
        ref = np.sort(reference[col].to_numpy(dtype=float))
        vals = candidates[col].to_numpy(dtype=float)
        below = np.searchsorted(ref, vals, side="right")
        above = n - np.searchsorted(ref, vals, side="left")
        tail = 2 * np.minimum(below + 1, above + 1) / (n + 2)
        scores = np.minimum(scores, np.clip(tail, 0.0, 1.0))
    return scores


def retention(source: np.ndarray, candidate: np.ndarray, modality: str, media_cfg: dict[str, Any]) -> float:
    """Correlation in [0, 1] of source and candidate after standardisation (pixels, or log-mel for audio)."""
    if modality == "audio":
        pair = torch.from_numpy(np.stack([source, candidate]).astype(np.float32))
        feats = log_mel(pair, media_cfg["sample_rate"], media_cfg["n_fft"], media_cfg["hop"], media_cfg["n_mels"])
        a, b = feats[0].numpy().ravel(), feats[1].numpy().ravel()
    else:
        a, b = source.astype(np.float64).ravel(), candidate.astype(np.float64).ravel()
    sa, sb = a.std(), b.std()
    if sa == 0 or sb == 0:
        return 0.0
    corr = float(np.mean((a - a.mean()) * (b - b.mean())) / (sa * sb))
    return max(corr, 0.0)


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
    per_stat = pd.DataFrame({col: realism(candidates[[col]], reference[[col]]) for col in reference.columns})
    return per_stat.idxmin(axis=1).tolist()


def score_candidates(
    candidates: pd.DataFrame,
    source_paths: dict[str, str],
    labels: list[str],
    real: pd.DataFrame,
    predict: Any,
    modality: str,
    media_cfg: dict[str, Any],
    load: Any,
) -> pd.DataFrame:
    """Realism, clarity and weakness of every candidate.

    `source_paths` maps each source id to its file; `labels` orders the model's outputs.
    `real` holds the real samples (training data and the real dev examples of each slice, with their slice
    columns); `predict(paths) -> (N, C) probabilities` is the current model, which is also the reference
    recognizer on the clean sources; `load(path) -> array` decodes a sample.
    """
    sr = media_cfg.get("sample_rate")
    arrays = {r.id: load(r.path) for r in candidates.itertuples()}
    src_ids = sorted(set(candidates["source_id"]))
    sources = {sid: load(source_paths[sid]) for sid in src_ids}
    cand_stats = pd.DataFrame([quality_stats(arrays[i], modality, sr) for i in candidates["id"]])
    # The sources are training samples, so most real rows are files decoded just above: reuse those arrays.
    decoded = {source_paths[sid]: x for sid, x in sources.items()}
    real_stats = pd.DataFrame(
        [quality_stats(decoded[p] if p in decoded else load(p), modality, sr) for p in real["path"]], index=real.index
    )
    train_mask = real["split"] == "train"

    realism_score = np.ones(len(candidates))
    weakest = np.array([""] * len(candidates), dtype=object)
    for target, idx in candidates.groupby("target_slice").indices.items():
        reference = real_stats[train_mask | slice_mask(real, target)]
        realism_score[idx] = realism(cand_stats.iloc[idx], reference)
        weakest[idx] = least_typical(cand_stats.iloc[idx], reference)

    probs = predict(candidates["path"].tolist())
    index_of = {label: k for k, label in enumerate(labels)}
    label_index = np.array([index_of[label] for label in candidates["label"]], dtype=int)
    p_candidate = probs[np.arange(len(candidates)), label_index]
    src_probs = predict([source_paths[s] for s in src_ids])
    src_p = dict(zip(src_ids, src_probs, strict=True))
    p_source = np.array([src_p[s][k] for s, k in zip(candidates["source_id"], label_index, strict=True)])
    pairs = zip(candidates["source_id"], candidates["id"], strict=True)
    kept = np.array([retention(sources[s], arrays[i], modality, media_cfg) for s, i in pairs])
    return pd.DataFrame(
        {
            "id": candidates["id"].to_numpy(),
            "target_slice": candidates["target_slice"].to_numpy(),
            "label": candidates["label"].to_numpy(),
            "source_id": candidates["source_id"].to_numpy(),
            "path": candidates["path"].to_numpy(),
            "realism": realism_score,
            "least_typical": weakest,
            "p_source": p_source,
            "retention": kept,
            "clarity": p_source * kept,
            "p_model": p_candidate,
            "weakness": 1.0 - p_candidate,
            "predicted": probs.argmax(axis=1),
        }
    )
