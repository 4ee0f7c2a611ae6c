"""One interface for both modalities: a spec (list of `{name, **arguments}`) becomes a seeded pipeline.

`pipeline(x, seed)` returns the augmented sample and per-transform records of what was applied;
`pipeline.replay(x, records)` re-makes that sample; `pipeline.to_dict()` gives a spec that rebuilds it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from augment.audio import AudioPipeline, audio_transform
from augment.image import ImagePipeline
from augment.noise import NoisePool

MODALITIES = ("audio", "image")


class Pipeline(Protocol):
    """What curation relies on, whatever the modality."""

    modality: str

    def __call__(self, x: np.ndarray, seed: int) -> tuple[np.ndarray, list[dict[str, Any]]]: ...

    def replay(self, x: np.ndarray, applied: Sequence[Mapping[str, Any]]) -> np.ndarray: ...

    def to_dict(self) -> list[dict[str, Any]]: ...


def parse_spec(spec: Sequence[Mapping[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(name, arguments) for each spec entry; an entry without a string `name` is rejected with its index."""
    if isinstance(spec, str | bytes | Mapping) or not isinstance(spec, Sequence):
        raise ValueError(f"a pipeline spec must be a list of {{name, **arguments}} entries, got {spec!r}")
    steps = []
    for i, entry in enumerate(spec):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            raise ValueError(f"spec entry {i} must be a mapping with a string 'name', got {entry!r}")
        steps.append((entry["name"], {key: value for key, value in entry.items() if key != "name"}))
    return steps


def build_pipeline(
    modality: str,
    spec: Sequence[Mapping[str, Any]],
    *,
    sample_rate: int | None = None,
    noise: NoisePool | None = None,
) -> Pipeline:
    """The pipeline for a spec; audio needs its sample rate (and a noise pool for BackgroundNoise)."""
    steps = parse_spec(spec)
    if modality == "audio":
        if sample_rate is None:
            raise ValueError("audio pipelines need a sample_rate")
        return AudioPipeline([audio_transform(name, args, noise) for name, args in steps], sample_rate)
    if modality == "image":
        if sample_rate is not None or noise is not None:
            raise ValueError("image pipelines take no sample_rate or noise pool")
        return ImagePipeline(steps)
    raise ValueError(f"unknown modality {modality!r}; known: {', '.join(MODALITIES)}")
