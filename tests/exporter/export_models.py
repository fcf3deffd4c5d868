"""Tiny reference models and inputs shared by the exporter tests."""

from __future__ import annotations

import numpy as np
import torch

from nnship.core import TensorSpec
from nnship.models import encoder_small, mobilenet_small, resnet_small

IMAGE = [TensorSpec("x", (1, 3, 8, 8))]
TOKENS = [TensorSpec("input_ids", (1, 6), "int64"), TensorSpec("attention_mask", (1, 6), "int64")]


def tiny_resnet() -> torch.nn.Module:
    torch.manual_seed(0)
    return resnet_small(width=4, depths=(1, 1)).eval()


def tiny_mobilenet() -> torch.nn.Module:
    torch.manual_seed(0)
    return mobilenet_small(width_mult=0.25).eval()


def tiny_encoder() -> torch.nn.Module:
    torch.manual_seed(0)
    return encoder_small(vocab_size=40, max_len=12, d_model=16, heads=2, layers=1).eval()


def token_examples(batch: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 40, size=(batch, 6)).astype(np.int64)
    mask = np.ones((batch, 6), np.int64)
    mask[:, -2:] = 0  # some padding, so the mask matters
    return {"input_ids": ids, "attention_mask": mask}
