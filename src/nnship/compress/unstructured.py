"""Unstructured (magnitude) and semi-structured 2:4 sparsity, baked into the weights.

Magnitude pruning uses `torch.nn.utils.prune` (global or per-layer L1) and then
`prune.remove`, so no masks or hooks stay behind. The 2:4 pattern (NVIDIA sparse tensor cores:
in every 4 consecutive weights along the input axis, 2 are zero) is written by hand because
torch only offers it as a CUDA tensor layout (`to_sparse_semi_structured`), not as a mask.
Dense CPU kernels do not get faster from zeros: reports say so.
"""

from __future__ import annotations

import fnmatch

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def sparsity(tensor: torch.Tensor) -> float:
    """Fraction of exactly-zero elements (0..1)."""
    return float((tensor == 0).sum()) / max(tensor.numel(), 1)


def _layer_ratio(name: str, ratio: float, layer_ratios: dict[str, float]) -> float:
    for pattern, value in layer_ratios.items():
        if fnmatch.fnmatchcase(name, pattern):
            return value
    return ratio


def magnitude_prune(
    model: nn.Module,
    layers: dict[str, nn.Module],
    ratio: float,
    *,
    scope: str = "uniform",
    layer_ratios: dict[str, float] | None = None,
) -> dict[str, float]:
    """Zero the smallest-|w| weights of `layers` in place; returns sparsity per layer (0..1).

    `uniform`: each layer loses `ratio` of its weights (or its override). `global`: one
    magnitude threshold over all non-overridden layers removes `ratio` of their weights together
    (Han et al. 2015, "Learning both Weights and Connections").
    """
    layer_ratios = layer_ratios or {}
    overridden = {n for n in layers if any(fnmatch.fnmatchcase(n, p) for p in layer_ratios)}
    ranked = [m for n, m in layers.items() if n not in overridden]
    if scope == "global" and ranked and ratio > 0:
        torch_prune.global_unstructured(
            [(m, "weight") for m in ranked], pruning_method=torch_prune.L1Unstructured, amount=ratio
        )
    for name, module in layers.items():
        r = _layer_ratio(name, ratio, layer_ratios)
        if (scope != "global" or name in overridden) and r > 0:
            torch_prune.l1_unstructured(module, "weight", amount=r)
        if torch_prune.is_pruned(module):
            torch_prune.remove(module, "weight")
    return {name: sparsity(module.weight) for name, module in layers.items()}


def two_four_mask(weight: torch.Tensor) -> torch.Tensor | None:
    """Boolean keep-mask with the 2 largest |w| of every 4 consecutive input weights, or None
    when the input axis (in_channels for convs, in_features for linear) is not a multiple of 4.

    Conv weights (out, in, *k) are grouped along `in` at each kernel position, as NVIDIA's ASP
    does, so the pattern matches what sparse tensor cores read."""
    if weight.ndim < 2 or weight.shape[1] % 4:
        return None
    moved = weight.detach().movedim(1, -1)  # (out, *k, in)
    groups = moved.abs().reshape(-1, 4)
    top = groups.topk(2, dim=1, sorted=False).indices
    mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(1, top, True)
    return mask.reshape(moved.shape).movedim(-1, 1)


def two_four_prune(layers: dict[str, nn.Module]) -> tuple[dict[str, float], dict[str, str]]:
    """Apply the 2:4 pattern to every layer that allows it, in place.

    Returns (sparsity per pruned layer, reason per skipped layer)."""
    done: dict[str, float] = {}
    skipped: dict[str, str] = {}
    for name, module in layers.items():
        groups = getattr(module, "groups", 1)
        if groups != 1:
            skipped[name] = f"grouped/depthwise convolution (groups={groups}): no 2:4 layout"
            continue
        mask = two_four_mask(module.weight)
        if mask is None:
            skipped[name] = f"input axis {module.weight.shape[1]} is not a multiple of 4"
            continue
        with torch.no_grad():
            module.weight.mul_(mask)
        done[name] = sparsity(module.weight)
    return done, skipped
