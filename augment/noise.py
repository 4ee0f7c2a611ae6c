"""Background-noise clips held in memory, grouped by kind of noise (car, babble, ...).

The caller loads the audio and picks the pool (augment or test); this module only holds arrays,
so the same code serves augmentation and the stress-test conditions without knowing where clips live.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, eq=False)
class NoiseClip:
    """One noise recording: a non-silent, finite, 1-D float32 array (stored read-only) and its group."""

    id: str
    group: str
    samples: np.ndarray
    sample_rate: int
    _energy: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("id", "group"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"noise clip {name} must be a non-empty string, got {value!r}")
        samples = np.asarray(self.samples)
        if samples.ndim != 1 or samples.size == 0 or not np.issubdtype(samples.dtype, np.floating):
            raise ValueError(
                f"noise clip {self.id!r} must be a non-empty 1-D float array, "
                f"got shape {samples.shape} and dtype {samples.dtype}"
            )
        if not np.all(np.isfinite(samples)):
            raise ValueError(f"noise clip {self.id!r} holds NaN or infinite samples")
        if not np.any(samples):
            raise ValueError(f"noise clip {self.id!r} is silent: it cannot be mixed at any SNR")
        rate = self.sample_rate
        if isinstance(rate, bool) or not isinstance(rate, int | np.integer) or rate < 1:
            raise ValueError(f"noise clip {self.id!r} sample rate must be a positive int, got {rate!r}")
        object.__setattr__(self, "sample_rate", int(rate))
        frozen = samples.astype(np.float32)  # always a copy: the caller's array stays theirs
        frozen.flags.writeable = False
        object.__setattr__(self, "samples", frozen)

    def cumulative_energy(self, length: int) -> np.ndarray:
        """[0, cumsum(x**2)] in float64 over the clip repeated cyclically to at least `length` samples (and two
        periods): the energy of any stretch of the repeated clip is the difference of two entries.

        Kept on the clip, so every transform drawing from it shares one array, and extended only when a longer
        length is asked for. An accumulated sum is sequential, so its first values are the same bits whatever
        the length computed.
        """
        if self._energy is None or self._energy.size < length + 1:
            size = self.samples.size
            total = max(length, 2 * size)
            energy = np.empty(total + 1)  # [0, squares repeated cyclically], then summed in place
            energy[0] = 0.0
            np.square(self.samples, out=energy[1 : size + 1], dtype=np.float64)
            filled = size
            while filled < total:  # doubling copies of what is there already
                step = min(filled, total - filled)
                energy[1 + filled : 1 + filled + step] = energy[1 : 1 + step]
                filled += step
            np.cumsum(energy, out=energy)
            energy.flags.writeable = False
            object.__setattr__(self, "_energy", energy)
        return self._energy


class NoisePool:
    """Noise clips of one pool at one sample rate, looked up by group or by id (ids are unique)."""

    def __init__(self, clips: Iterable[NoiseClip]) -> None:
        ordered = sorted(clips, key=lambda clip: clip.id)  # selection must not depend on loading order
        if not ordered:
            raise ValueError("a noise pool needs at least one clip")
        duplicates = sorted(i for i, count in Counter(clip.id for clip in ordered).items() if count > 1)
        if duplicates:
            raise ValueError(f"noise clip ids must be unique, repeated: {', '.join(duplicates)}")
        rates = sorted({clip.sample_rate for clip in ordered})
        if len(rates) > 1:
            raise ValueError(f"noise clips must share one sample rate, got {rates}")
        self.sample_rate: int = rates[0]
        self._clips = {clip.id: clip for clip in ordered}

    def __len__(self) -> int:
        return len(self._clips)

    def groups(self) -> list[str]:
        """The groups present, sorted."""
        return sorted({clip.group for clip in self._clips.values()})

    def select(self, groups: Sequence[str]) -> list[NoiseClip]:
        """Clips of the given groups, sorted by id; every group asked for must have clips."""
        if isinstance(groups, str) or not groups:
            raise ValueError(f"groups must be a non-empty list of group names, got {groups!r}")
        available = self.groups()
        missing = [g for g in groups if g not in available]
        if missing:
            raise ValueError(
                f"no noise clips in group(s) {', '.join(map(repr, missing))}; available groups: {', '.join(available)}"
            )
        wanted = set(groups)
        return [clip for clip in self._clips.values() if clip.group in wanted]
