"""The networks: one small convolutional classifier for images and one for log-mel spectrograms.

Both take what `features.load_inputs` returns (images (B, C, H, W) in [0, 1], or raw waveforms (B, T)) and
turn it into features with `features.to_model_input` inside `forward`, so a model carries its whole front
end. They are deliberately small: the point of the project is the data, and every stage must run on a CPU.

The image network also standardises its input per channel with the mean and standard deviation of its
training inputs (buffers set by `SmallCNN.fit_input_stats`, saved with the weights). Without it, dark ink on
white paper (mean pixel ~0.95) leaves the first BatchNorm's running statistics lagging behind the batch ones
and eval accuracy collapses at ordinary learning rates. Log-mels are already normalised per utterance.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from curation.features import media_config, to_model_input

IMAGE_WIDTHS = (16, 32, 64)
AUDIO_WIDTHS = (16, 32, 64, 64)
AUDIO_STEM_POOL = (1, 2)  # halve the 100 frames/s log-mel in time first: ~3x faster, no loss on spoken digits
STD_FLOOR = 1e-3  # the smallest input standard deviation divided by: a constant channel centres to zeros, not NaN
STATS_CHUNK = 1024  # samples per chunk when computing the input statistics (bounded memory)


class SmallCNN(nn.Module):
    """Optional per-channel input standardisation, an optional max-pool stem, Conv(3x3)-BatchNorm-ReLU-MaxPool(2)
    blocks, global average pooling (`embed`), and one linear layer (`forward`)."""

    def __init__(
        self,
        modality: str,
        in_channels: int,
        n_classes: int,
        widths: tuple[int, ...],
        cfg: dict[str, Any],
        stem_pool: tuple[int, int] | None = None,
        standardise: bool = False,
    ) -> None:
        super().__init__()
        self.modality = modality
        self.cfg = cfg
        self.n_classes = n_classes
        self.standardise = standardise
        if standardise:  # identity until fit_input_stats; buffers, so state_dict saves and restores them
            self.register_buffer("input_mean", torch.zeros(in_channels))
            self.register_buffer("input_std", torch.ones(in_channels))
        blocks: list[nn.Module] = [nn.MaxPool2d(stem_pool)] if stem_pool else []
        for width in widths:
            blocks += [
                nn.Conv2d(in_channels, width, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            in_channels = width
        self.features = nn.Sequential(*blocks)
        self.head = nn.Linear(in_channels, n_classes)
        self.embed_dim = in_channels

    def _input(self, x: Tensor) -> Tensor:
        """What the convolutions see: `to_model_input`, then the per-channel standardisation if enabled."""
        z = to_model_input(x, self.modality, self.cfg)
        if self.standardise:
            z = (z - self.input_mean.view(1, -1, 1, 1)) / self.input_std.view(1, -1, 1, 1)
        return z

    def _chunks(self, x: Tensor) -> Iterator[Tensor]:
        """`to_model_input` of x, STATS_CHUNK samples at a time, in float64."""
        for i in range(0, x.shape[0], STATS_CHUNK):
            yield to_model_input(x[i : i + STATS_CHUNK], self.modality, self.cfg).double()

    @torch.no_grad()
    def fit_input_stats(self, x: Tensor) -> None:
        """Set the standardisation buffers to the per-channel mean and population standard deviation (floored
        at STD_FLOOR) of `to_model_input(x)` over samples and positions; a no-op without standardisation.

        Two passes in float64 over fixed chunks: exact enough on a million near-white pixels, deterministic,
        and without a float64 copy of the whole set.
        """
        if not self.standardise:
            return
        total, count = torch.zeros(self.input_mean.shape[0], dtype=torch.float64), 0
        for c in self._chunks(x):
            total, count = total + c.sum(dim=(0, 2, 3)), count + c.shape[0] * c.shape[2] * c.shape[3]
        mean = (total / count).view(1, -1, 1, 1)
        squares = torch.zeros_like(total)
        for c in self._chunks(x):
            squares = squares + (c - mean).square().sum(dim=(0, 2, 3))
        var = squares / count
        self.input_mean.copy_(mean.flatten().float())
        self.input_std.copy_(var.sqrt().clamp_min(STD_FLOOR).float())

    def embed(self, x: Tensor) -> Tensor:
        """Penultimate features (B, embed_dim): the globally average-pooled output of the last block."""
        return self.features(self._input(x)).mean(dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor:
        """Logits (B, n_classes) from loaded inputs."""
        return self.head(self.embed(x))


def build_model(modality: str, n_classes: int, cfg: dict[str, Any]) -> SmallCNN:
    """A freshly initialised network for `modality`, with its media settings from cfg[modality] or
    cfg["media"] (images: `channels`; audio: the log-mel settings its forward uses). The image network's input
    standardisation starts as the identity (mean 0, std 1); `train.train_model` fits it to the training inputs.

    Initialisation draws from torch's global RNG: callers that need determinism build the network inside
    `torch.random.fork_rng()` after seeding, as `train.train_model` does.
    """
    if n_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {n_classes}")
    settings = {modality: dict(media_config(cfg, modality))}
    if modality == "image":
        channels = int(settings["image"]["channels"])
        return SmallCNN("image", channels, n_classes, IMAGE_WIDTHS, settings, standardise=True)
    return SmallCNN("audio", 1, n_classes, AUDIO_WIDTHS, settings, stem_pool=AUDIO_STEM_POOL)
