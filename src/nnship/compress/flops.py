"""Model size and cost: parameter counts, FLOPs, and an interleaved torch CPU latency check."""

from __future__ import annotations

import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nnship.sources.binding import call_module


def count_parameters(model: nn.Module) -> int:
    """Number of parameter elements (shared parameters counted once)."""
    return sum(p.numel() for p in model.parameters())


def count_nonzero_parameters(model: nn.Module) -> int:
    """Number of non-zero parameter elements (what unstructured sparsity changes)."""
    return sum(int(torch.count_nonzero(p.detach())) for p in model.parameters())


@torch.no_grad()
def count_flops(model: nn.Module, inputs: dict[str, torch.Tensor]) -> int:
    """FLOPs of one forward pass on `inputs` as counted by `torch.utils.flop_counter`
    (2 per multiply-add of convolutions, matmuls and linear layers; elementwise ops are not
    counted). Units: floating-point operations for the given batch."""
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            call_module(model, inputs)
        return int(counter.get_total_flops())
    finally:
        model.train(was_training)


@torch.no_grad()
def torch_latency_ms(
    models: dict[str, nn.Module],
    inputs: dict[str, torch.Tensor],
    *,
    runs: int = 50,
    warmup: int = 5,
) -> dict[str, float]:
    """Median eager-PyTorch CPU latency in milliseconds of each model on `inputs`, with the
    models interleaved run by run so machine drift hits all of them alike. Defaults: 50 runs
    after 5 warm-up runs. A rough figure; deployment latency is measured on the exported ONNX."""
    for model in models.values():
        model.eval()
        for _ in range(warmup):
            call_module(model, inputs)
    samples: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(runs):
        for name, model in models.items():
            start = time.perf_counter()
            call_module(model, inputs)
            samples[name].append((time.perf_counter() - start) * 1e3)
    return {name: sorted(s)[len(s) // 2] for name, s in samples.items()}
