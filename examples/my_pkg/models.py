"""The user's own model factories: plain functions returning `nn.Module`s in eval mode."""

from __future__ import annotations

import torch
from torch import nn


class SmallCnn(nn.Module):
    """Conv-BN-ReLU twice, global average pooling, a linear classifier (any input size >= 4)."""

    def __init__(self, num_classes: int = 10, width: int = 8, in_channels: int = 1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(x), 1))


def small_cnn(num_classes: int = 10, width: int = 8, seed: int = 0) -> SmallCnn:
    """A `SmallCnn` with weights drawn from `seed` (so every call builds the same model)."""
    torch.manual_seed(seed)
    return SmallCnn(num_classes, width).eval()


def broken_factory() -> nn.Module:
    """A factory that fails, to show how nnship reports it."""
    raise RuntimeError("checkpoint server unreachable")
