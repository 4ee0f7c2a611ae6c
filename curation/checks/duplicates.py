"""Duplicates and leakage: exact copies (same bytes or same decoded content), near copies (perceptual
fingerprints a few bits apart), and copies that straddle a given train/dev/test split.

The probe computes `image_fingerprint` / `audio_fingerprint` for every sample; the checks here only read the
probe table. Near-duplicate search uses multi-index hashing (Norouzi et al. 2012): the bits are cut into
max_distance + 1 bands, and by pigeonhole any two fingerprints within max_distance bits agree exactly on at
least one band, so only rows sharing a band value are compared. `duplicate_groups` clusters exact and near
copies so that the split stage can keep each cluster on one side. A finding's `related` lists the partner
ids separated by ";", exact copies first, then by distance and id; its reason names the first.

Default distances, measured with `benchmarks/duplicates_real.py` (fingerprints are 64 bits):
- near_duplicate 3. Images: pHash bits are balanced (32 ones), so image distances are even and 3 acts as 2.
  A JPEG re-encode moves 0-2 bits at quality 90 (95th percentile; max 6 on NEU-DET), 2-4 at quality 50,
  brightness +20 0-4. On NEU-DET no two different images are within 6 bits; on the Roman numerals (small
  strokes on white paper, where an 8x8-frequency hash sees little more than where the ink sits) 19 pairs of
  different drawings are within 2 bits and 99 within 4, hence not more. Audio: resampling to 16 or 11.025 kHz
  moves at most 4 bits (mostly 0-1), noise at 40 dB SNR 1 on average (max 5), Ogg Vorbis 4.5 on average;
  the closest two different FSDD recordings (same digit, same speaker) are 6 bits apart.
- leakage 0 (identical fingerprints only, besides exact copies): a leak is an error that quarantines the
  evaluation-side sample, so it must be precise; on the Roman numerals 2 bits would report 14 samples whose
  partner is a different drawing, 0 reports one ("I" and "II" drawn at the same place).
Search cost grows with the distance (bands get shorter): 100,000 random fingerprints take about 2 s at 3 bits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from scipy.fft import dctn

from curation.checks.decode import measured_rows
from curation.checks.findings import Check, Context, Finding, ReadinessError, register
from curation.mel import hz_to_mel, mel_to_hz

HASH_BITS = 64
_IMAGE_SIDE = 32  # pHash: the image is reduced to 32x32 before the DCT
_ZIGZAG = sorted(((u, v) for u in range(12) for v in range(12) if u + v > 0), key=lambda p: (p[0] + p[1], p[0]))[
    :HASH_BITS
]
_ZIG_ROWS = np.array([p[0] for p in _ZIGZAG])
_ZIG_COLS = np.array([p[1] for p in _ZIGZAG])

# audio fingerprint grid: (_AUDIO_STEPS - 1) time differences x (_AUDIO_BANDS - 1) band differences = 64 bits
_AUDIO_STEPS = 9
_AUDIO_BANDS = 9
_AUDIO_FMIN = 100.0  # below: hum and DC offset (FSDD clips carry up to 5% of peak as DC)
_AUDIO_FMAX = 3500.0  # above: what codecs and resampling filters cut first
_AUDIO_FRAME_S = 0.032
_AUDIO_HOP_S = 0.010
_AUDIO_EDGE_SHARE = 0.03  # the clip spans from 3% to 97% of its band energy
_AUDIO_BLOCK_FRAMES = 1024  # frames transformed at a time
_AUDIO_FLOOR_DB = 40.0  # log energies floored this far below the loudest cell: codec noise in quiet cells


def _to_hex(bits: np.ndarray) -> str:
    """Pack a boolean vector (a multiple of 8 bits, first bit most significant) into hex."""
    return np.packbits(bits.ravel().astype(bool)).tobytes().hex()


def image_fingerprint(pixels: np.ndarray) -> str:
    """64-bit DCT perceptual hash (pHash) of a 2-D uint8 grey image, as 16 hex chars.

    Why: re-encoding (PNG/JPEG), rescaling and small brightness/contrast changes move few bits, while
    different pictures differ in about half. How: box-filter (area) resize to 32x32, 2-D DCT-II, take the
    64 lowest-frequency coefficients in zigzag order *excluding the DC term* (the DC term is only the mean
    brightness, so every bit carries shape), bit = coefficient > their median. A flat image hashes to zeros.
    """
    grey = np.asarray(pixels)
    if grey.ndim != 2 or grey.dtype != np.uint8:
        raise ValueError(f"image_fingerprint needs a 2-D uint8 grey array, got {grey.dtype} of shape {grey.shape}")
    small = Image.fromarray(grey).resize((_IMAGE_SIDE, _IMAGE_SIDE), Image.Resampling.BOX)
    coefficients = dctn(np.asarray(small, dtype=np.float64), type=2, norm="ortho")
    low = coefficients[_ZIG_ROWS, _ZIG_COLS]
    return _to_hex(low > np.median(low))


def _band_energies(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Band power (frames x _AUDIO_BANDS) in mel-spaced rectangular bands, 32 ms Hann frames, 10 ms hop.

    The clip is padded by one frame of zeros at both ends, so trailing silence or a cut right after the last
    sound yields the same frames. Frames are transformed in blocks, so long clips need little memory."""
    frame = max(16, round(_AUDIO_FRAME_S * sample_rate))
    hop = max(1, round(_AUDIO_HOP_S * sample_rate))
    padded = np.pad(samples, (frame, frame))
    n_frames = 1 + (len(padded) - frame) // hop
    freqs = np.fft.rfftfreq(frame, 1.0 / sample_rate)
    mel = np.linspace(hz_to_mel(_AUDIO_FMIN), hz_to_mel(min(_AUDIO_FMAX, sample_rate / 2.0)), _AUDIO_BANDS + 1)
    edges = mel_to_hz(mel)
    band = np.searchsorted(edges, freqs, side="right") - 1
    inside = (band >= 0) & (band < _AUDIO_BANDS)
    to_bands = np.zeros((int(inside.sum()), _AUDIO_BANDS))
    to_bands[np.arange(len(to_bands)), band[inside]] = 1.0
    window = np.hanning(frame)
    energies = np.empty((n_frames, _AUDIO_BANDS))
    for first in range(0, n_frames, _AUDIO_BLOCK_FRAMES):
        starts = hop * np.arange(first, min(n_frames, first + _AUDIO_BLOCK_FRAMES))
        power = np.abs(np.fft.rfft(padded[starts[:, None] + np.arange(frame)] * window, axis=1)) ** 2
        energies[first : first + len(starts)] = power[:, inside] @ to_bands
    return energies


def _energy_grid(energies: np.ndarray, steps: int) -> np.ndarray:
    """Log band energies (floored _AUDIO_FLOOR_DB below the loudest cell) averaged over `steps` equal segments
    of the span holding the middle 94% of the energy.

    Why: silence trimming by a threshold jumps by whole frames when one frame crosses it; energy quantiles move
    continuously, so padding, noise and resampling barely shift the grid. Each segment averages 8 points
    interpolated between frame centres."""
    log_energy = np.log(np.maximum(energies, energies.max() * 10.0 ** (-_AUDIO_FLOOR_DB / 10.0)))
    cumulative = np.concatenate([[0.0], np.cumsum(energies.sum(axis=1))])
    cumulative /= cumulative[-1]
    edges = np.arange(len(cumulative), dtype=np.float64)
    start = np.interp(_AUDIO_EDGE_SHARE, cumulative, edges)
    stop = np.interp(1.0 - _AUDIO_EDGE_SHARE, cumulative, edges)
    fine = steps * 8
    positions = start + (np.arange(fine) + 0.5) * (stop - start) / fine - 0.5
    frames = np.arange(len(energies))
    points = np.stack([np.interp(positions, frames, band) for band in log_energy.T], axis=1)
    return points.reshape(steps, 8, -1).mean(axis=1)


def audio_fingerprint(samples: np.ndarray, sample_rate: int) -> str:
    """64-bit perceptual fingerprint of a mono clip, as 16 hex chars (Haitsma-Kalker style).

    Why: a re-encoded, re-gained, padded or resampled copy keeps (almost) all bits, while two recordings of
    the same word by the same speaker differ in timing and formant detail, hence in many bits. How: log
    energies in 9 mel bands from 100 to 3500 Hz (below: hum and DC; above: what codecs and resampling filters
    cut), on 32 ms frames every 10 ms (set in seconds and Hz, so the sample rate does not matter), floored
    40 dB below the loudest cell (so codec noise in quiet cells flips no bit), averaged over 9 equal time
    segments of the span from 3% to 97% of the clip's band energy (this trims silence, and unlike a level
    threshold it moves smoothly); bit = sign of the change of the adjacent-band difference between adjacent
    segments, E[t,b]-E[t,b+1]-(E[t-1,b]-E[t-1,b+1]) > 0, 8 x 8 = 64 bits. Gain cancels in every difference.
    A clip with no energy in the bands (silence, or a sample rate of 200 Hz or less) gets all zeros.
    """
    clip = np.asarray(samples, dtype=np.float64).ravel()
    if sample_rate <= 2 * _AUDIO_FMIN:
        return "0" * (HASH_BITS // 4)
    energies = _band_energies(clip, sample_rate)
    if not energies.sum() > 0:
        return "0" * (HASH_BITS // 4)
    grid = _energy_grid(energies, _AUDIO_STEPS)
    band_diff = grid[:, :-1] - grid[:, 1:]
    return _to_hex(np.diff(band_diff, axis=0) > 0)


def hamming(a: str, b: str) -> int:
    """Bits that differ between two hex fingerprints of equal length (the near-duplicate distance)."""
    if len(a) != len(b):
        raise ValueError(f"fingerprints of different lengths: {len(a)} and {len(b)} hex digits")
    return (int(a, 16) ^ int(b, 16)).bit_count()


def near_pairs(fingerprints: Sequence[str], max_distance: int) -> list[tuple[int, int, int]]:
    """Every (i, j, distance) with i < j whose hex fingerprints are at most `max_distance` bits apart, sorted.

    Why: an all-pairs scan is quadratic; multi-index hashing only compares rows that agree exactly on one of
    max_distance + 1 bands of bits, which every pair within max_distance does (pigeonhole), then checks the
    exact distance. Empty fingerprints are skipped; fingerprints of different lengths are never compared.
    """
    if isinstance(max_distance, bool) or not isinstance(max_distance, int | np.integer) or max_distance < 0:
        raise ValueError(f"max_distance must be a whole number of bits >= 0, got {max_distance!r}")
    by_length: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for i, fingerprint in enumerate(fingerprints):
        if isinstance(fingerprint, str) and fingerprint:
            by_length[len(fingerprint)].append((i, int(fingerprint, 16)))
    pairs: list[tuple[int, int, int]] = []
    for length, items in by_length.items():
        pairs += _banded_pairs(items, 4 * length, int(max_distance))
    return sorted(pairs)


def _banded_pairs(items: list[tuple[int, int]], n_bits: int, max_distance: int) -> list[tuple[int, int, int]]:
    """`near_pairs` for (index, value) items of one bit length."""
    if max_distance >= n_bits:  # every pair qualifies
        candidates = {(a, b) for n, (a, _) in enumerate(items) for b, _ in items[n + 1 :]}
    else:
        bands = max_distance + 1
        candidates = set()
        for band in range(bands):
            low, high = band * n_bits // bands, (band + 1) * n_bits // bands
            shift, mask = n_bits - high, (1 << (high - low)) - 1
            buckets: dict[int, list[int]] = defaultdict(list)
            for index, value in items:
                buckets[(value >> shift) & mask].append(index)
            for members in buckets.values():
                candidates.update((a, b) for n, a in enumerate(members) for b in members[n + 1 :])
    values = dict(items)
    found = ((a, b, (values[a] ^ values[b]).bit_count()) for a, b in candidates)
    return [(min(a, b), max(a, b), d) for a, b, d in found if d <= max_distance]


class _UnionFind:
    """Disjoint sets over 0..n-1 (path halving), for duplicate clusters."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        """The representative of i's set."""
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        """Join the sets of i and j."""
        a, b = self.find(i), self.find(j)
        if a != b:
            self.parent[max(a, b)] = min(a, b)

    def groups(self) -> list[list[int]]:
        """The sets with more than one member, each sorted, in order of their smallest member."""
        members: dict[int, list[int]] = defaultdict(list)
        for i in range(len(self.parent)):
            members[self.find(i)].append(i)
        return [m for _, m in sorted(members.items()) if len(m) > 1]


def _text(value: Any) -> str:
    """A text cell, or '' for a missing one (None, or NaN after a table merge)."""
    return value if isinstance(value, str) else ""


def _exact_links(rows: list[dict[str, Any]]) -> _UnionFind:
    """Union-find over `rows` joining those that share sha256 (same bytes) or content_hash (same content)."""
    links = _UnionFind(len(rows))
    for column in ("sha256", "content_hash"):
        first: dict[str, int] = {}
        for i, row in enumerate(rows):
            key = _text(row.get(column))
            if key:
                links.union(first.setdefault(key, i), i)
    return links


def _exact_relation(a: dict[str, Any], b: dict[str, Any], modality: str) -> tuple[str, str]:
    """How exact copy `a` relates to `b`, for reasons: (phrase before b, note after b)."""
    if _text(a.get("sha256")) and _text(a.get("sha256")) == _text(b.get("sha256")):
        return "byte-identical to", ""
    return f"same {'pixels' if modality == 'image' else 'samples'} as", " (identical decoded content)"


def _measured(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows the probe measured (`decode.measured_rows`), each with its `_position` in `table`."""
    return measured_rows(table.assign(_position=np.arange(len(table))))


def _near(rows: list[dict[str, Any]], exact: _UnionFind, max_distance: int) -> list[tuple[int, int, int]]:
    """Near pairs (i, j, distance) over `rows` that are not exact copies of each other."""
    pairs = near_pairs([_text(r.get("fingerprint")) for r in rows], max_distance)
    return [(i, j, d) for i, j, d in pairs if exact.find(i) != exact.find(j)]


def _bits(rows: list[dict[str, Any]], i: int) -> int:
    """The bit length of row i's fingerprint."""
    return 4 * len(rows[i]["fingerprint"])


def _and_more(count: int) -> str:
    """' and N more' for a reason naming one of several partners."""
    return f" and {count} more" if count > 0 else ""


class _DistanceCheck(Check):
    """A check with a `max_distance` setting: a whole number of fingerprint bits >= 0."""

    max_distance: int = 0

    def __init__(self, severity: str | None = None, **settings: Any) -> None:
        super().__init__(severity, **settings)
        value = self.max_distance
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ReadinessError(f"check {self.name}: max_distance must be a whole number of bits >= 0, got {value!r}")


@register
class ExactDuplicate(Check):
    """Samples with the same bytes (sha256) or the same decoded pixels / samples (content_hash, so a PNG and
    a lossless re-save of it match): the copies weigh twice in training and in evaluation."""

    name = "exact_duplicate"
    severity = "warning"
    description = "rows sharing sha256 or content_hash"

    def find_issues(self, table: pd.DataFrame, ctx: Context) -> list[Finding]:
        rows = _measured(table)
        out = []
        for group in _exact_links(rows).groups():
            for i in group:
                others = sorted((j for j in group if j != i), key=lambda j: str(rows[j]["id"]))
                phrase, note = _exact_relation(rows[i], rows[others[0]], ctx.modality)
                reason = f"{phrase} {rows[others[0]]['path']}{note}{_and_more(len(others) - 1)}"
                related = ";".join(str(rows[j]["id"]) for j in others)
                out.append(self.finding(rows[i], reason, 0.0, related))
        return out


@register
class NearDuplicate(_DistanceCheck):
    """Samples whose perceptual fingerprints are at most `max_distance` bits apart but are not exact copies:
    re-encoded, rescaled, re-gained or lightly edited copies (see the module docstring for the default)."""

    name = "near_duplicate"
    severity = "warning"
    description = "fingerprints within max_distance bits, not exact copies"
    max_distance: int = 3

    def find_issues(self, table: pd.DataFrame, ctx: Context) -> list[Finding]:
        rows = _measured(table)
        partners: dict[int, list[tuple[int, str, int]]] = defaultdict(list)
        for i, j, d in _near(rows, _exact_links(rows), self.max_distance):
            partners[i].append((d, str(rows[j]["id"]), j))
            partners[j].append((d, str(rows[i]["id"]), i))
        out = []
        for i in sorted(partners):
            near = sorted(partners[i])
            d, _, j = near[0]
            distance = f"{d} of {_bits(rows, i)} fingerprint bits differ"
            reason = f"looks like {rows[j]['path']} ({distance}){_and_more(len(near) - 1)}"
            related = ";".join(pid for _, pid, _ in near)
            out.append(self.finding(rows[i], reason, d / (self.max_distance + 1), related))
        return out


@register
class Leakage(_DistanceCheck):
    """An exact or near copy on both sides of the given split (`ctx.split_column`): evaluation scores would
    reward memorising. The sample on the later side in `order` (train < dev < val < test) is reported, so
    quarantining it removes the leak; when a side is not in `order`, both samples are reported. Near copies
    count up to `max_distance` bits (default 0, see the module docstring)."""

    name = "leakage"
    severity = "error"
    description = "exact or near copies across the given train/dev/test split"
    max_distance: int = 0
    order: tuple[str, ...] = ("train", "dev", "val", "test")

    def __init__(self, severity: str | None = None, **settings: Any) -> None:
        super().__init__(severity, **settings)
        if isinstance(self.order, str) or not all(isinstance(v, str) for v in self.order):
            raise ReadinessError(f"check {self.name}: order must be a list of split names, got {self.order!r}")
        self.order = tuple(self.order)

    def find_issues(self, table: pd.DataFrame, ctx: Context) -> list[Finding]:
        if ctx.split_column is None:
            return []
        if ctx.split_column not in table.columns:
            raise ReadinessError(f"check {self.name}: split column {ctx.split_column!r} is not in the table")
        rows = _measured(table)
        exact = _exact_links(rows)
        pairs = [(i, j, -1) for group in exact.groups() for n, i in enumerate(group) for j in group[n + 1 :]]
        pairs += _near(rows, exact, self.max_distance)
        rank = {name: n for n, name in enumerate(self.order)}
        leaks: dict[int, list[tuple[int, str, int]]] = defaultdict(list)
        for i, j, d in pairs:
            side_i, side_j = _split_value(rows[i], ctx.split_column), _split_value(rows[j], ctx.split_column)
            if not side_i or not side_j or side_i == side_j:
                continue
            ranked = side_i in rank and side_j in rank
            if not ranked or rank[side_i] > rank[side_j]:
                leaks[i].append((d, str(rows[j]["id"]), j))
            if not ranked or rank[side_j] > rank[side_i]:
                leaks[j].append((d, str(rows[i]["id"]), i))
        out = []
        for i in sorted(leaks):
            found = sorted(leaks[i])
            d, _, j = found[0]
            side, other = _split_value(rows[i], ctx.split_column), _split_value(rows[j], ctx.split_column)
            if d < 0:
                relation = f"{_exact_relation(rows[i], rows[j], ctx.modality)[0]} {other} sample {rows[j]['path']}"
            else:
                relation = f"looks like {other} sample {rows[j]['path']} ({d} of {_bits(rows, i)} bits differ)"
            reason = f"{relation}: leaks across {side}/{other}{_and_more(len(found) - 1)}"
            out.append(self.finding(rows[i], reason, 0.0, ";".join(pid for _, pid, _ in found)))
        return out


def _split_value(row: dict[str, Any], column: str) -> str:
    """A row's given split, as text ('' when missing)."""
    value = row.get(column)
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value).strip()


def duplicate_groups(table: pd.DataFrame, max_distance: int) -> pd.Series:
    """A cluster id per row, aligned with `table`: "dup-<smallest id>" for rows joined to others by exact
    copies (sha256 / content_hash) or fingerprints within `max_distance` bits (transitively, union-find),
    else the row's own id. Why: the split stage keeps each cluster on one side, so no copy leaks."""
    rows = _measured(table)
    links = _exact_links(rows)
    for i, j, _ in near_pairs([_text(r.get("fingerprint")) for r in rows], max_distance):
        links.union(i, j)
    cluster = [str(v) for v in table["id"]]
    for group in links.groups():
        name = "dup-" + min(str(rows[i]["id"]) for i in group)
        for i in group:
            cluster[rows[i]["_position"]] = name
    return pd.Series(cluster, index=table.index, name="dup_group", dtype=object)
