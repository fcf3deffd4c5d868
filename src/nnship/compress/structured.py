"""Structured pruning: choose the channels each group keeps, then shrink the layers physically.

The result is a dense module of the same classes with smaller Conv/Linear/BatchNorm/LayerNorm/
Embedding parameters: no masks, no hooks, so `state_dict`, export and `save_pt2` just work.
"""

from __future__ import annotations

import fnmatch
import math

import numpy as np
import torch
from torch import nn

from nnship.compress.graph import ChannelGroup
from nnship.compress.importance import slot_tensors


def keep_count(size: int, ratio: float, round_to: int) -> int:
    """Channels a group of `size` keeps at `ratio`: size * (1 - ratio) rounded to the nearest
    multiple of `round_to` (at least `round_to`, at most `size`). Groups of at most `round_to`
    channels are kept whole."""
    if ratio <= 0 or size <= round_to:
        return size
    keep = int(round(size * (1.0 - ratio) / round_to)) * round_to
    return min(size, max(round_to, keep))


def group_ratio(group: ChannelGroup, layer_ratios: dict[str, float]) -> float | None:
    """The per-layer override that applies to `group` (via any producer), else None."""
    for pattern, ratio in layer_ratios.items():
        if any(fnmatch.fnmatchcase(p, pattern) for p in group.producers):
            return ratio
    return None


def _top(score: torch.Tensor, keep: int) -> list[int]:
    # Stable sort on -score: ties keep the lower channel index (deterministic).
    order = np.argsort(-score.numpy(), kind="stable")
    return sorted(int(i) for i in order[:keep])


def plan_uniform(
    groups: list[ChannelGroup],
    scores: dict[int, torch.Tensor],
    ratio: float,
    layer_ratios: dict[str, float],
    round_to: int,
) -> dict[int, list[int]]:
    """Kept channel indices per group id: every group loses `ratio` (or its override)."""
    plan = {}
    for group in groups:
        r = group_ratio(group, layer_ratios)
        keep = keep_count(group.size, ratio if r is None else r, round_to)
        plan[group.id] = _top(scores[group.id], keep)
    return plan


def plan_global(
    groups: list[ChannelGroup],
    scores: dict[int, torch.Tensor],
    ratio: float,
    layer_ratios: dict[str, float],
    round_to: int,
    max_group_ratio: float,
) -> dict[int, list[int]]:
    """Kept channel indices per group id from one threshold over all groups' importances, each
    normalized to mean 1 (Torch-Pruning's "mean" normalizer), removing `ratio` of all channels
    in total while no group loses more than `max_group_ratio`. Groups with a per-layer override
    are planned uniformly."""
    fixed = [g for g in groups if group_ratio(g, layer_ratios) is not None]
    plan = plan_uniform(fixed, scores, ratio, layer_ratios, round_to)
    ranked = [g for g in groups if g.id not in plan]
    pool: list[tuple[float, int, int]] = []
    for group in ranked:
        norm = scores[group.id] / (scores[group.id].mean() + 1e-12)
        pool += [(float(v), group.id, c) for c, v in enumerate(norm)]
    pool.sort()
    target = int(round(ratio * sum(g.size for g in ranked)))
    limit = {g.id: int(math.floor(g.size * max_group_ratio)) for g in ranked}
    removed = {g.id: 0 for g in ranked}
    taken = 0
    for _, gid, _c in pool:
        if taken >= target:
            break
        if removed[gid] < limit[gid]:
            removed[gid] += 1
            taken += 1
    for group in ranked:
        r = removed[group.id] / group.size
        plan[group.id] = _top(scores[group.id], keep_count(group.size, r, round_to))
    return plan


def _axis_len(module: nn.Module, role: str) -> int:
    if isinstance(module, nn.Embedding):
        return module.embedding_dim
    if isinstance(module, nn.LayerNorm):
        return module.normalized_shape[0]
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return module.num_features
    if isinstance(module, nn.Linear):
        return module.out_features if role == "out" else module.in_features
    assert isinstance(module, nn.modules.conv._ConvNd)
    return module.out_channels if role == "out" else module.in_channels


def _replace(module: nn.Module, attr: str, axis: int, index: torch.Tensor) -> None:
    old = getattr(module, attr)
    new = old.detach().index_select(axis, index).clone()
    if isinstance(old, nn.Parameter):
        setattr(module, attr, nn.Parameter(new, requires_grad=old.requires_grad))
    else:
        module._buffers[attr] = new


def _shrink(module: nn.Module, role: str, keep: torch.Tensor) -> None:
    n = int(keep.numel())
    if isinstance(module, nn.modules.conv._ConvNd):
        if role == "out":
            depthwise = module.groups > 1 and module.groups == module.in_channels
            _replace(module, "weight", 0, keep)
            if module.bias is not None:
                _replace(module, "bias", 0, keep)
            module.out_channels = n
            if depthwise:
                module.in_channels = module.groups = n
        else:
            _replace(module, "weight", 1, keep)
            module.in_channels = n
    elif isinstance(module, nn.Linear):
        if role == "out":
            _replace(module, "weight", 0, keep)
            if module.bias is not None:
                _replace(module, "bias", 0, keep)
            module.out_features = n
        else:
            _replace(module, "weight", 1, keep)
            module.in_features = n
    elif isinstance(module, nn.modules.batchnorm._BatchNorm):
        for attr in ("weight", "bias", "running_mean", "running_var"):
            if getattr(module, attr, None) is not None:
                _replace(module, attr, 0, keep)
        module.num_features = n
    elif isinstance(module, nn.LayerNorm):
        for attr in ("weight", "bias"):
            if getattr(module, attr, None) is not None:
                _replace(module, attr, 0, keep)
        module.normalized_shape = (n,)
    elif isinstance(module, nn.Embedding):
        _replace(module, "weight", 1, keep)
        module.embedding_dim = n
    else:  # pragma: no cover - the graph only emits slots for the types above
        raise AssertionError(f"cannot shrink {type(module).__name__}")


def apply_plan(model: nn.Module, groups: list[ChannelGroup], plan: dict[int, list[int]]) -> None:
    """Shrink every slot of every planned group to its kept channels, in place."""
    modules = dict(model.named_modules())
    masks: dict[tuple[str, str], np.ndarray] = {}
    by_id = {g.id: g for g in groups}
    for gid, kept in plan.items():
        group = by_id[gid]
        if len(kept) == group.size:
            continue
        removed = sorted(set(range(group.size)) - set(kept))
        for slot in group.slots:
            module = modules[slot.module]
            assert slot_tensors(module, slot), slot
            key = (slot.module, slot.role)
            mask = masks.setdefault(key, np.ones(_axis_len(module, slot.role), dtype=bool))
            for c in removed:
                mask[slot.start + c * slot.stride : slot.start + (c + 1) * slot.stride] = False
    for (name, role), mask in masks.items():
        keep = torch.from_numpy(np.flatnonzero(mask)).long()
        _shrink(modules[name], role, keep)
