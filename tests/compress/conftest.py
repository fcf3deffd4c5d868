"""Fixtures of the compress tests (models and helpers live in compress_models.py)."""

from __future__ import annotations

import pytest
import torch

from nnship.models import digits_cnn


@pytest.fixture
def image() -> dict[str, torch.Tensor]:
    return {"x": torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(1))}


@pytest.fixture(scope="module")
def teacher(trained_digits_cnn):
    """The trained digits CNN (width 8), the teacher of the distillation tests."""
    model = digits_cnn(width=8)
    model.load_state_dict(torch.load(trained_digits_cnn, weights_only=True))
    return model.eval()
