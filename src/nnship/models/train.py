"""Deterministic training of reference classifiers on real data (for demos, tests, benches)."""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

from nnship.datasets import Split

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch so a training run is repeatable on one machine."""
    import random

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train_classifier(
    model: nn.Module,
    train: Split,
    *,
    epochs: int = 10,
    lr: float = 3e-3,
    batch_size: int = 64,
    seed: int = 0,
    weight_decay: float = 1e-4,
) -> nn.Module:
    """Train `model` with AdamW + cosine schedule on `train` (cross-entropy); returns it in eval mode.

    Inputs are passed to `model` as keyword arguments named like `train.inputs`.
    """
    seed_everything(seed)
    names = list(train.inputs)
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in train.inputs.items()}
    labels = torch.from_numpy(train.labels)
    n = len(labels)
    steps = epochs * ((n + batch_size - 1) // batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(n, generator=generator)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            logits = model(**{k: tensors[k][idx] for k in names})
            loss = nn.functional.cross_entropy(logits, labels[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach()) * len(idx)
        log.debug("epoch %d loss %.4f", epoch, total / n)
    return model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, split: Split, batch_size: int = 256) -> float:
    """Top-1 accuracy (0..1) of `model` on `split`."""
    model.eval()
    correct = 0
    for start in range(0, len(split), batch_size):
        batch = {
            k: torch.from_numpy(v[start : start + batch_size]) for k, v in split.inputs.items()
        }
        pred = model(**batch).argmax(-1).numpy()
        correct += int((pred == split.labels[start : start + batch_size]).sum())
    return correct / len(split)
