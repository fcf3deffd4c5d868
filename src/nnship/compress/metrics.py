"""Top-1 accuracy / agreement of torch modules on a data source (for prune/distill reports)."""

from __future__ import annotations

import torch
from torch import nn

from nnship.compress._data import flatten_outputs
from nnship.core import DataSource
from nnship.sources.binding import call_module


@torch.no_grad()
def top1(
    models: dict[str, nn.Module],
    data: DataSource,
    *,
    reference: str | None = None,
    batch_size: int = 64,
) -> dict[str, dict[str, float]]:
    """Per model: "accuracy" against the data's labels (0..1, when it has labels) and
    "agreement" of its top-1 with the `reference` model's (0..1, when a reference is named).
    Uses the first output; models are put in eval mode."""
    hits = {name: {"accuracy": 0, "agreement": 0} for name in models}
    count = 0
    for model in models.values():
        model.eval()
    for item in data.iter_batches(batch_size):
        batch = {k: torch.from_numpy(v) for k, v in item.inputs.items()}
        preds = {
            name: next(iter(flatten_outputs(call_module(m, batch)).values())).argmax(-1)
            for name, m in models.items()
        }
        for name, pred in preds.items():
            if item.labels is not None:
                hits[name]["accuracy"] += int((pred.numpy() == item.labels).sum())
            if reference is not None:
                hits[name]["agreement"] += int((pred == preds[reference]).sum())
        count += len(next(iter(batch.values())))
    out: dict[str, dict[str, float]] = {}
    for name, h in hits.items():
        out[name] = {}
        if data.has_labels:
            out[name]["accuracy"] = h["accuracy"] / max(count, 1)
        if reference is not None:
            out[name]["agreement"] = h["agreement"] / max(count, 1)
    return out
