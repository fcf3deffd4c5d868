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


SENSITIVITY_LEVELS = tuple(round(0.1 * i, 1) for i in range(1, 10))
"""Sparsity levels each layer is measured at (0.1 ... 0.9; 0.9 is also the per-layer cap)."""


@torch.no_grad()
def layer_sensitivity(
    model: nn.Module, layers: dict[str, nn.Module], inputs: dict[str, torch.Tensor]
) -> dict[str, list[float]]:
    """Per layer, the relative output error ||y_s - y||^2 / ||y||^2 of the layer alone when
    its smallest-|w| weights are zeroed at each of `SENSITIVITY_LEVELS`, on its real inputs
    from one forward pass of `inputs`.

    This is the layer-wise reconstruction objective of Optimal Brain Compression / SparseGPT
    (Frantar & Alistarh 2022, 2023: min ||WX - W_s X||^2), evaluated for magnitude masks
    instead of solved for: a cheap, data-driven sensitivity that sees what weight counts
    alone do not (a 3x3 depthwise filter has 9 weights; zeroing 3 of them changes its output
    far more than zeroing 3 of a 1x1 convolution's 1,000).
    """
    from torch.func import functional_call

    from nnship.sources.binding import call_module

    errors: dict[str, list[float]] = {}

    def hook(name: str):
        def run(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
            if name in errors or not isinstance(output, torch.Tensor):
                return
            errors[name] = []  # also stops the hook re-entering on the calls below
            weight = module.weight.detach()
            base = float(output.pow(2).sum()) + 1e-12
            order = weight.abs().flatten().argsort()
            curve = []
            for level in SENSITIVITY_LEVELS:
                pruned = weight.flatten().clone()
                pruned[order[: int(round(level * weight.numel()))]] = 0
                out = functional_call(module, {"weight": pruned.view_as(weight)}, args)
                curve.append(float((out - output).pow(2).sum()) / base)
            errors[name] = curve

        return run

    handles = [m.register_forward_hook(hook(n)) for n, m in layers.items()]
    try:
        call_module(model, inputs)
    finally:
        for handle in handles:
            handle.remove()
    return errors


def allocate_sparsity(
    sizes: dict[str, int], errors: dict[str, list[float]], ratio: float
) -> dict[str, float]:
    """Per-layer sparsity removing `ratio` of all weights of `sizes` together at the least
    summed sensitivity: greedily raise, one 0.1 level at a time, the layer whose next level
    costs the least error per weight removed (the curves are near convex, so greedy is close
    to the optimum of the separable allocation), up to 0.9 per layer."""
    total = sum(sizes.values())
    target = ratio * total
    level = {n: 0 for n in sizes}
    removed = 0.0

    def cost(name: str) -> float:
        i = level[name]
        if i >= len(SENSITIVITY_LEVELS) or name not in errors:
            return float("inf")
        before = errors[name][i - 1] if i else 0.0
        step = SENSITIVITY_LEVELS[i] - (SENSITIVITY_LEVELS[i - 1] if i else 0.0)
        return (errors[name][i] - before) / (step * sizes[name])

    while removed < target:
        name = min(sizes, key=lambda n: (cost(n), n))
        if cost(name) == float("inf"):
            break
        i = level[name]
        step = SENSITIVITY_LEVELS[i] - (SENSITIVITY_LEVELS[i - 1] if i else 0.0)
        removed += step * sizes[name]
        level[name] = i + 1
    return {n: SENSITIVITY_LEVELS[i - 1] if i else 0.0 for n, i in level.items()}


def sensitivity_prune(
    model: nn.Module,
    layers: dict[str, nn.Module],
    ratio: float,
    inputs: dict[str, torch.Tensor],
    *,
    layer_ratios: dict[str, float] | None = None,
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Zero `ratio` of the weights of `layers` together, spread by measured sensitivity
    (`layer_sensitivity` on `inputs`, `allocate_sparsity`); layers with a `layer_ratios`
    override take it and are left out of the allocation. Returns (sparsity per layer,
    sensitivity curves)."""
    layer_ratios = layer_ratios or {}
    errors = layer_sensitivity(model, layers, inputs)
    ranked = {
        n: m.weight.numel()
        for n, m in layers.items()
        if not any(fnmatch.fnmatchcase(n, p) for p in layer_ratios)
    }
    amounts = allocate_sparsity(ranked, errors, ratio)
    for name, module in layers.items():
        r = amounts.get(name, _layer_ratio(name, ratio, layer_ratios))
        if r > 0:
            torch_prune.l1_unstructured(module, "weight", amount=r)
            torch_prune.remove(module, "weight")
    return {name: sparsity(module.weight) for name, module in layers.items()}, errors


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
