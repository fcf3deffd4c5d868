"""Fixtures of the compress tests (models and helpers live in compress_models.py)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def image() -> dict[str, torch.Tensor]:
    return {"x": torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(1))}
