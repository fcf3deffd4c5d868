"""Augmentation of image-like inputs for distillation, and its distill options."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from torch import nn

from nnship.compress import DistillConfig, distill
from nnship.compress.augment import augment_batch, augmentable
from nnship.sources import ArrayData


def _batch() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {
        "image": torch.randn(4, 3, 32, 32),
        "ids": torch.randint(0, 9, (4, 32, 32, 3)),  # 4-D but not float
        "small": torch.randn(4, 1, 8, 8),  # 8x8: not a photo
    }


def test_only_image_like_inputs_are_augmented():
    batch = _batch()
    assert augmentable(batch) == ["image"]
    out, _, mix = augment_batch(batch, None, DistillConfig(), torch.Generator().manual_seed(0))
    assert out["image"].shape == batch["image"].shape
    assert not torch.allclose(out["image"], batch["image"])
    assert out["ids"] is batch["ids"] and out["small"] is batch["small"]
    assert mix is not None and 0.0 <= mix[1] <= 1.0


def test_same_seed_same_augmentation_and_off_switches():
    batch = _batch()
    a, _, _ = augment_batch(batch, None, DistillConfig(), torch.Generator().manual_seed(3))
    b, _, _ = augment_batch(batch, None, DistillConfig(), torch.Generator().manual_seed(3))
    torch.testing.assert_close(a["image"], b["image"])
    off = DistillConfig(augment_crop_scale=(1.0, 1.0), augment_flip=False, augment_mixup=0.0)
    same, _, mix = augment_batch(batch, None, off, torch.Generator().manual_seed(3))
    torch.testing.assert_close(same["image"], batch["image"], atol=1e-5, rtol=1e-5)
    assert mix is None


def test_crop_scale_is_validated():
    with pytest.raises(ValidationError, match="augment_crop_scale"):
        DistillConfig(augment_crop_scale=(0.8, 0.2))


class TinyCnn(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2), nn.BatchNorm2d(width), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )  # fmt: skip
        self.head = nn.Linear(width, 4)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(inputs))


def test_distill_augments_photos_raises_epochs_to_min_steps_and_recalibrates():
    torch.manual_seed(0)
    teacher, student = TinyCnn(16).eval(), TinyCnn(8)
    rng = np.random.default_rng(0)
    data = ArrayData({"x": rng.standard_normal((20, 3, 32, 32)).astype(np.float32)})
    config = DistillConfig(
        epochs=1, batch_size=8, min_steps=6, patience=None, val_fraction=0.2, augment=True
    )
    result = distill(teacher, student, data, config)
    assert result.augmented and result.epochs == 3  # 16 training samples: 2 steps per epoch
    assert len(result.history) == 3
    bn = result.student.features[1]
    assert bn.momentum == 0.1 and not bn.training  # restored after recalibration
    off = distill(teacher, TinyCnn(8), data, config.model_copy(update={"augment": False}))
    assert not off.augmented


def test_auto_augmentation_needs_a_long_enough_run():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    data = ArrayData({"x": rng.standard_normal((20, 3, 32, 32)).astype(np.float32)})
    short = distill(TinyCnn(16).eval(), TinyCnn(8), data, DistillConfig(epochs=1, batch_size=8))
    assert not short.augmented  # 2 steps: augmented views would only add noise
    config = DistillConfig(epochs=1, batch_size=16, min_steps=100, patience=None)
    assert distill(TinyCnn(16).eval(), TinyCnn(8), data, config).augmented
