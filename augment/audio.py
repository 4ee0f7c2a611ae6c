"""Audio transforms in the audiomentations mould: one transform per concept, random draw then pure apply.

Each transform draws its parameters from a Generator it is handed (`sample_params`) and applies them
deterministically (`apply`), so a recorded draw replays bit for bit. PitchShift and TimeStretch delegate
the signal processing to audiomentations with frozen parameters, so its global `random` is never used.
"""

from __future__ import annotations

import inspect
import math
import operator
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import audiomentations as am
import numpy as np
from audiomentations.core.transforms_interface import BaseWaveformTransform

from augment import functional as F
from augment.noise import NoiseClip, NoisePool
from augment.rng import generator

Params = dict[str, Any]

# Name of the record that closes every audio run: the clipping-prevention factor, replayed as recorded.
CLIPPING_STEP = "prevent_clipping"


def _number(owner: str, arg: str, value: object) -> float:
    """A finite real argument as float; anything else (bool, str, NaN) is rejected by name."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{owner}: {arg} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{owner}: {arg} must be finite, got {value!r}")
    return float(value)


def _range(owner: str, low_arg: str, low: object, high_arg: str, high: object) -> tuple[float, float]:
    """A (low, high) pair of finite numbers with low <= high."""
    lo, hi = _number(owner, low_arg, low), _number(owner, high_arg, high)
    if lo > hi:
        raise ValueError(f"{owner}: {low_arg} ({lo:g}) must not exceed {high_arg} ({hi:g})")
    return lo, hi


class AudioTransform(ABC):
    """A waveform transform: `sample_params` draws (and decides `p`), `apply` is deterministic.

    Parameters are JSON-serializable dicts with an `applied` flag; `to_dict` gives the spec entry.
    """

    name: ClassVar[str]
    param_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, p: float = 1.0) -> None:
        self.p = _number(self.name, "p", p)
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"{self.name}: p must be in [0, 1], got {p}")

    @classmethod
    def from_spec(cls, args: Mapping[str, Any], noise: NoisePool | None = None) -> AudioTransform:
        """The transform for one spec entry's arguments; wrong or missing argument names are ValueErrors."""
        try:
            inspect.signature(cls).bind(**args)
        except TypeError as exc:
            raise ValueError(f"{cls.name}: {exc}") from None
        return cls(**args)

    def sample_params(self, rng: np.random.Generator, x: np.ndarray, sample_rate: int) -> Params:
        """Whether to apply (probability p) and, if so, this call's parameters, all drawn from `rng`."""
        applied = bool(rng.random() < self.p)
        return {"applied": applied, **(self._draw(rng, x, sample_rate) if applied else {})}

    def apply(self, x: np.ndarray, sample_rate: int, params: Mapping[str, Any]) -> np.ndarray:
        """The transform with the given parameters, without any randomness."""
        needed = ("applied", *self.param_names) if params.get("applied") else ("applied",)
        missing = [key for key in needed if key not in params]
        if missing:
            raise ValueError(f"{self.name}: parameters lack {', '.join(missing)}, got {dict(params)}")
        return self._apply(x, sample_rate, params) if params["applied"] else x

    def to_dict(self) -> dict[str, Any]:
        """The spec entry that rebuilds this transform."""
        return {"name": self.name, **self._args(), "p": self.p}

    @abstractmethod
    def _draw(self, rng: np.random.Generator, x: np.ndarray, sample_rate: int) -> Params:
        """The random parameters of one application."""

    @abstractmethod
    def _apply(self, x: np.ndarray, sample_rate: int, params: Mapping[str, Any]) -> np.ndarray:
        """The signal processing for drawn parameters."""

    @abstractmethod
    def _args(self) -> dict[str, Any]:
        """Constructor arguments other than p and the noise pool."""


AUDIBLE_DB = -20.0
AUDIBLE_RATIO = 10 ** (AUDIBLE_DB / 10)  # the energy share of the loudest window an audible one has at least
AUDIBLE_BLOCK = 256  # samples per block in the bound that lets most draws skip the audible-offset scan


def _every_window_audible(energy: np.ndarray, size: int, n: int) -> bool:
    """Whether every n-sample window starting in [0, size) is audible (`BackgroundNoise._audible_offset`), decided
    from block sums alone: most noise is steady, and then the scan of every offset is not needed.

    `energy` is a clip's cumulative energy over at least size + n + 2 * AUDIBLE_BLOCK samples. A window holds at
    least n // AUDIBLE_BLOCK - 1 whole blocks and lies within ceil(n / AUDIBLE_BLOCK) + 1 blocks, so the quietest
    such run of blocks bounds the quietest window from below and the loudest run the loudest window from above.
    The scan's answer is the same, not only nearly: `energy` never decreases and rounding is monotone, so the
    computed differences keep the order of the exact ones.
    """
    needed = size + n + 2 * AUDIBLE_BLOCK + 1
    if energy.size < needed:
        raise ValueError(f"the audible bound needs {needed} energy entries, got {energy.size}")
    inner, outer = n // AUDIBLE_BLOCK - 1, -(-n // AUDIBLE_BLOCK) + 1
    if inner < 1:
        return False
    edges = energy[::AUDIBLE_BLOCK]
    inner_starts = -(-(size - 1) // AUDIBLE_BLOCK) + 1  # block starts ceil(o / block) over o in [0, size)
    outer_starts = (size - 1) // AUDIBLE_BLOCK + 1  # block starts floor(o / block)
    quietest = (edges[inner : inner + inner_starts] - edges[:inner_starts]).min()
    loudest = (edges[outer : outer + outer_starts] - edges[:outer_starts]).max()
    return bool(quietest >= loudest * AUDIBLE_RATIO)


class BackgroundNoise(AudioTransform):
    """Mix a clip from the given noise groups at an SNR drawn uniformly in [min_snr_db, max_snr_db]."""

    name = "BackgroundNoise"
    param_names = ("clip_id", "offset", "snr_db")

    def __init__(
        self, pool: NoisePool, groups: Sequence[str], min_snr_db: float, max_snr_db: float, p: float = 1.0
    ) -> None:
        super().__init__(p)
        if not isinstance(pool, NoisePool):
            raise ValueError(f"{self.name} needs a noise pool (NoisePool), got {type(pool).__name__}")
        self.min_snr_db, self.max_snr_db = _range(self.name, "min_snr_db", min_snr_db, "max_snr_db", max_snr_db)
        try:
            clips = pool.select(groups)
        except ValueError as exc:
            raise ValueError(f"{self.name}: {exc}") from None
        self.groups = list(groups)
        self.sample_rate = pool.sample_rate
        self._clips = {clip.id: clip for clip in clips}
        self._ids = list(self._clips)

    @classmethod
    def from_spec(cls, args: Mapping[str, Any], noise: NoisePool | None = None) -> AudioTransform:
        """As the base, with the pool taken from `noise` (spec files hold no audio)."""
        if noise is None:
            raise ValueError(f"{cls.name} needs a noise pool: pass noise=NoisePool(...)")
        if "pool" in args:
            raise ValueError(f"{cls.name}: the pool comes from the noise argument, not from the spec")
        return super().from_spec({**args, "pool": noise})

    def _draw(self, rng: np.random.Generator, x: np.ndarray, sample_rate: int) -> Params:
        clip = self._clips[self._ids[int(rng.integers(len(self._ids)))]]
        return {
            "clip_id": clip.id,
            "offset": self._audible_offset(rng, clip, x.size),
            "snr_db": float(rng.uniform(self.min_snr_db, self.max_snr_db)),
        }

    def _audible_offset(self, rng: np.random.Generator, clip: NoiseClip, n: int) -> int:
        """A uniformly drawn offset among those whose n-sample window carries sound.

        Real recordings of sparse events (a door knock, a cough) are mostly silence, and a silent window
        cannot be mixed at any SNR. A window is audible if its level is within AUDIBLE_DB of the loudest
        window's; windows wrap around the clip's end as `fit_length` does.
        """
        size = clip.samples.size
        energy = clip.cumulative_energy(size + n + 2 * AUDIBLE_BLOCK)
        if _every_window_audible(energy, size, n):  # the scan would list every offset: the same draw
            return int(rng.integers(size))
        window = energy[n : n + size] - energy[:size]
        offsets = np.flatnonzero(window >= window.max() * AUDIBLE_RATIO)
        return int(offsets[int(rng.integers(offsets.size))])

    def _apply(self, x: np.ndarray, sample_rate: int, params: Mapping[str, Any]) -> np.ndarray:
        if sample_rate != self.sample_rate:
            raise ValueError(f"{self.name}: noise is at {self.sample_rate} Hz, the audio at {sample_rate} Hz")
        clip = self._clips.get(params["clip_id"])
        if clip is None:
            raise ValueError(f"{self.name}: noise clip {params['clip_id']!r} is not in groups {self.groups}")
        noise = F.fit_length(clip.samples, x.size, params["offset"])
        try:
            return F.mix_at_snr(x, noise, params["snr_db"])
        except ValueError as exc:  # e.g. a replayed offset where the clip is silent, or silent speech
            raise ValueError(f"{self.name} with noise clip {clip.id!r} from offset {params['offset']}: {exc}") from None

    def _args(self) -> dict[str, Any]:
        return {"groups": list(self.groups), "min_snr_db": self.min_snr_db, "max_snr_db": self.max_snr_db}


class Telephone(AudioTransform):
    """Telephone-line channel (band-pass, 8 kHz, mu-law); nothing random but `p`."""

    name = "Telephone"

    def __init__(self, low_hz: float = 300.0, high_hz: float = 3400.0, mu_law_bits: int = 8, p: float = 1.0) -> None:
        super().__init__(p)
        self.low_hz, self.high_hz = _range(self.name, "low_hz", low_hz, "high_hz", high_hz)
        if self.low_hz <= 0 or self.low_hz == self.high_hz:
            raise ValueError(f"{self.name}: need 0 < low_hz < high_hz, got {low_hz} and {high_hz}")
        if isinstance(mu_law_bits, bool) or not isinstance(mu_law_bits, int) or not 2 <= mu_law_bits <= 16:
            raise ValueError(f"{self.name}: mu_law_bits must be an integer in [2, 16], got {mu_law_bits!r}")
        self.mu_law_bits = mu_law_bits

    def _draw(self, rng: np.random.Generator, x: np.ndarray, sample_rate: int) -> Params:
        return {}

    def _apply(self, x: np.ndarray, sample_rate: int, params: Mapping[str, Any]) -> np.ndarray:
        return F.telephone(x, sample_rate, self.low_hz, self.high_hz, self.mu_law_bits)

    def _args(self) -> dict[str, Any]:
        return {"low_hz": self.low_hz, "high_hz": self.high_hz, "mu_law_bits": self.mu_law_bits}


class Gain(AudioTransform):
    """Multiply by a gain drawn uniformly in [min_gain_db, max_gain_db] decibels."""

    name = "Gain"
    param_names = ("gain_db",)

    def __init__(self, min_gain_db: float, max_gain_db: float, p: float = 1.0) -> None:
        super().__init__(p)
        self.min_gain_db, self.max_gain_db = _range(self.name, "min_gain_db", min_gain_db, "max_gain_db", max_gain_db)

    def _draw(self, rng: np.random.Generator, x: np.ndarray, sample_rate: int) -> Params:
        return {"gain_db": float(rng.uniform(self.min_gain_db, self.max_gain_db))}

    def _apply(self, x: np.ndarray, sample_rate: int, params: Mapping[str, Any]) -> np.ndarray:
        return F.gain_db(x, params["gain_db"])

    def _args(self) -> dict[str, Any]:
        return {"min_gain_db": self.min_gain_db, "max_gain_db": self.max_gain_db}


def _run_frozen(transform: BaseWaveformTransform, params: Params, x: np.ndarray, sample_rate: int) -> np.ndarray:
    """An audiomentations transform applied with our parameters frozen, so it never draws its own."""
    transform.parameters = {"should_apply": True, **params}
    transform.freeze_parameters()
    return np.asarray(transform(x.astype(np.float32, copy=False), sample_rate), dtype=np.float32)


class _Delegated(AudioTransform):
    """A transform whose single parameter is drawn uniformly here and processed by audiomentations."""

    low_arg: ClassVar[str]
    high_arg: ClassVar[str]

    def __init__(self, low: float, high: float, p: float) -> None:
        super().__init__(p)
        self.low, self.high = _range(self.name, self.low_arg, low, self.high_arg, high)
        try:
            self._make()  # audiomentations checks its own limits (e.g. at most 24 semitones)
        except ValueError as exc:
            raise ValueError(f"{self.name}: {exc}") from None

    @abstractmethod
    def _make(self) -> BaseWaveformTransform:
        """A fresh audiomentations transform with this transform's range and p=1 (p is decided here)."""

    def _draw(self, rng: np.random.Generator, x: np.ndarray, sample_rate: int) -> Params:
        return {self.param_names[0]: float(rng.uniform(self.low, self.high))}

    def _apply(self, x: np.ndarray, sample_rate: int, params: Mapping[str, Any]) -> np.ndarray:
        return _run_frozen(self._make(), {self.param_names[0]: params[self.param_names[0]]}, x, sample_rate)

    def _args(self) -> dict[str, Any]:
        return {self.low_arg: self.low, self.high_arg: self.high}


class PitchShift(_Delegated):
    """Shift the pitch by a number of semitones drawn in [min_semitones, max_semitones], tempo unchanged."""

    name = "PitchShift"
    param_names = ("num_semitones",)
    low_arg, high_arg = "min_semitones", "max_semitones"

    def __init__(self, min_semitones: float, max_semitones: float, p: float = 1.0) -> None:
        super().__init__(min_semitones, max_semitones, p)

    def _make(self) -> am.PitchShift:
        return am.PitchShift(min_semitones=self.low, max_semitones=self.high, p=1.0)


class TimeStretch(_Delegated):
    """Change the tempo by a rate drawn in [min_rate, max_rate], pitch and length unchanged (pad or crop)."""

    name = "TimeStretch"
    param_names = ("rate",)
    low_arg, high_arg = "min_rate", "max_rate"

    def __init__(self, min_rate: float, max_rate: float, p: float = 1.0) -> None:
        super().__init__(min_rate, max_rate, p)

    def _make(self) -> am.TimeStretch:
        return am.TimeStretch(min_rate=self.low, max_rate=self.high, leave_length_unchanged=True, p=1.0)


AUDIO_TRANSFORMS: dict[str, type[AudioTransform]] = {
    cls.name: cls for cls in (BackgroundNoise, Telephone, Gain, PitchShift, TimeStretch)
}


def audio_transform(name: str, args: Mapping[str, Any], noise: NoisePool | None = None) -> AudioTransform:
    """The registered transform called `name`, built from its spec arguments."""
    if name not in AUDIO_TRANSFORMS:
        raise ValueError(f"unknown audio transform {name!r}; known: {', '.join(AUDIO_TRANSFORMS)}")
    return AUDIO_TRANSFORMS[name].from_spec(args, noise)


def _as_samples(x: np.ndarray) -> np.ndarray:
    """A float32 copy of a clip: 1-D, non-empty, floating point and finite, or a ValueError saying which."""
    x = np.asarray(x)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"audio must be a non-empty 1-D array (mono), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"audio must be floating point (samples in [-1, 1]), got dtype {x.dtype}")
    if not np.all(np.isfinite(x)):
        raise ValueError("audio holds NaN or infinite samples")
    return x.astype(np.float32)


class AudioPipeline:
    """Audio transforms in sequence, then clipping prevention; output float32 of the input's length.

    Transform i draws from its own generator (seed, i, name): whether and how much one transform draws
    never shifts the draws of the others, so changing one transform's arguments leaves theirs alone.
    """

    modality = "audio"

    def __init__(self, transforms: Sequence[AudioTransform], sample_rate: int) -> None:
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer) or sample_rate < 1:
            raise ValueError(f"sample_rate must be a positive int, got {sample_rate!r}")
        self.transforms = list(transforms)
        self.sample_rate = int(sample_rate)

    def __call__(self, x: np.ndarray, seed: int) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """The augmented clip and one record per transform (plus the clipping factor), from (x, seed) only."""
        seed = operator.index(seed)
        samples = _as_samples(x)
        records = []
        for i, transform in enumerate(self.transforms):
            params = transform.sample_params(generator(seed, i, transform.name), samples, self.sample_rate)
            samples = self._apply(transform, samples, params)
            records.append({"name": transform.name, "params": params})
        samples, factor = F.prevent_clipping(samples)
        records.append({"name": CLIPPING_STEP, "params": {"scale": factor}})
        return samples, records

    def replay(self, x: np.ndarray, applied: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The clip with recorded parameters re-applied: no randomness, identical to the recorded run."""
        malformed = [r for r in applied if not (isinstance(r, Mapping) and isinstance(r.get("params"), Mapping))]
        if malformed:
            raise ValueError(f"each record must be a mapping with 'name' and 'params', got {malformed[0]!r}")
        expected = [t.name for t in self.transforms] + [CLIPPING_STEP]
        names = [record.get("name") for record in applied]
        if names != expected:
            raise ValueError(f"records {names} do not belong to this pipeline, which records {expected}")
        samples = _as_samples(x)
        for transform, record in zip(self.transforms, applied, strict=False):
            samples = self._apply(transform, samples, record["params"])
        if "scale" not in applied[-1]["params"]:
            raise ValueError(f"the {CLIPPING_STEP} record lacks its scale: {applied[-1]!r}")
        return F.scale_samples(samples, applied[-1]["params"]["scale"])

    def to_dict(self) -> list[dict[str, Any]]:
        """The spec that rebuilds this pipeline."""
        return [transform.to_dict() for transform in self.transforms]

    def _apply(self, transform: AudioTransform, samples: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
        """One transform applied, checking the invariant every transform must keep: float32, same length."""
        out = transform.apply(samples, self.sample_rate, params)
        if out.shape != samples.shape or out.dtype != np.float32:
            raise ValueError(
                f"{transform.name} returned shape {out.shape} and dtype {out.dtype}; expected {samples.shape} float32"
            )
        return out
