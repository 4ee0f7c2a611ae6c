"""The networks: one small convolutional classifier for images and one for log-mel spectrograms.

Both take what `features.load_inputs` returns (images (B, C, H, W) in [0, 1], or raw waveforms (B, T)) and
turn it into features with `features.to_model_input` inside `forward`, so a model carries its whole front
end. They are deliberately small: the point of the project is the data, and every stage must run on a CPU.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from curation.features import media_config, to_model_input

IMAGE_WIDTHS = (16, 32, 64)
AUDIO_WIDTHS = (16, 32, 64, 64)
AUDIO_STEM_POOL = (1, 2)  # halve the 100 frames/s log-mel in time first: ~3x faster, no loss on spoken digits


class SmallCNN(nn.Module):
    """An optional max-pool stem, Conv(3x3)-BatchNorm-ReLU-MaxPool(2) blocks, global average pooling, and one
    linear layer."""

    def __init__(
        self,
        modality: str,
        in_channels: int,
        n_classes: int,
        widths: tuple[int, ...],
        cfg: dict[str, Any],
        stem_pool: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.modality = modality
        self.cfg = cfg
        self.n_classes = n_classes
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

    def forward(self, x: Tensor) -> Tensor:
        """Logits (B, n_classes) from loaded inputs."""
        z = self.features(to_model_input(x, self.modality, self.cfg))
        return self.head(z.mean(dim=(2, 3)))


def build_model(modality: str, n_classes: int, cfg: dict[str, Any]) -> nn.Module:
    """A freshly initialised network for `modality`, with its media settings from cfg[modality] or
    cfg["media"] (images: `channels`; audio: the log-mel settings its forward uses).

    Initialisation draws from torch's global RNG: callers that need determinism build the network inside
    `torch.random.fork_rng()` after seeding, as `train.train_model` does.
    """
    if n_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {n_classes}")
    settings = {modality: dict(media_config(cfg, modality))}
    if modality == "image":
        return SmallCNN("image", int(settings["image"]["channels"]), n_classes, IMAGE_WIDTHS, settings)
    return SmallCNN("audio", 1, n_classes, AUDIO_WIDTHS, settings, stem_pool=AUDIO_STEM_POOL)
