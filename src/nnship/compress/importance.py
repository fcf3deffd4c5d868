"""Channel importance of coupled groups: L1, L2, BatchNorm scale, first-order Taylor.

Each score is computed over the whole group (every slot that loses channel c), the "group
importance" of DepGraph (Fang et al. 2023): a channel matters if it matters anywhere it is used.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

from nnship.compress._data import flatten_outputs, load_arrays
from nnship.compress.graph import ChannelGroup, Slot
from nnship.core import DataSource
from nnship.errors import CompressionError

log = logging.getLogger(__name__)
_EPS = 1e-12


def slot_tensors(module: nn.Module, slot: Slot) -> list[tuple[str, int]]:
    """(attribute, axis) of every parameter/buffer of `module` that follows `slot`."""
    if slot.kind == "consumer":
        return [("weight", 1)]
    if slot.kind == "embedding":
        return [("weight", 1)]
    if slot.kind == "norm":
        names = ["weight", "bias"]
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            names += ["running_mean", "running_var"]
        return [(n, 0) for n in names if getattr(module, n, None) is not None]
    # producer / depthwise
    return [(n, 0) for n in ("weight", "bias") if getattr(module, n, None) is not None]


def per_channel(tensor: torch.Tensor, axis: int, slot: Slot, size: int) -> torch.Tensor:
    """`tensor` regrouped as (size, -1): row c holds every element channel c owns in `slot`."""
    x = tensor.movedim(axis, 0)[slot.start : slot.start + size * slot.stride]
    return x.reshape(size, -1)


def _normalized(score: torch.Tensor) -> torch.Tensor:
    return score / (score.mean() + _EPS)


def magnitude_scores(modules: dict[str, nn.Module], group: ChannelGroup, p: int) -> torch.Tensor:
    """Group Lp norm: per slot the Lp norm of each channel's weights, normalized to mean 1, then
    summed over the group's weight slots (normalization keeps a wide consumer from dominating)."""
    total = torch.zeros(group.size, dtype=torch.float64)
    for slot in group.slots:
        if slot.kind == "norm":
            continue
        weight = modules[slot.module].weight.detach().double()
        rows = per_channel(weight, slot_tensors(modules[slot.module], slot)[0][1], slot, group.size)
        score = rows.abs().sum(1) if p == 1 else rows.pow(2).sum(1).sqrt()
        total += _normalized(score)
    return total


def bn_scale_scores(modules: dict[str, nn.Module], group: ChannelGroup) -> torch.Tensor | None:
    """|gamma| of the group's normalization layers (Liu et al. 2017, "Learning Efficient
    Convolutional Networks through Network Slimming"); None if the group has none."""
    total = torch.zeros(group.size, dtype=torch.float64)
    found = False
    for slot in group.slots:
        module = modules[slot.module]
        if slot.kind != "norm" or getattr(module, "weight", None) is None:
            continue
        gamma = per_channel(module.weight.detach().double(), 0, slot, group.size)
        total += _normalized(gamma.abs().sum(1))
        found = True
    return total if found else None


def _taylor_loss(
    outputs: dict[str, torch.Tensor],
    labels: torch.Tensor | None,
    teacher_out: dict[str, torch.Tensor] | None,
) -> torch.Tensor:
    first = next(iter(outputs.values()))
    if labels is not None:
        return F.cross_entropy(first, labels)
    if teacher_out is not None:
        t = next(iter(teacher_out.values()))
        return F.kl_div(
            F.log_softmax(first, -1), F.log_softmax(t, -1), reduction="batchmean", log_target=True
        )
    if first.ndim == 2 and first.shape[1] > 1:
        # Unlabelled, no teacher: the model's own top-1 as pseudo-labels (the gradient of a KL
        # to itself would be zero).
        return F.cross_entropy(first, first.detach().argmax(-1))
    return sum(0.5 * o.pow(2).mean() for o in outputs.values())  # type: ignore[return-value]


def taylor_scores(
    model: nn.Module,
    groups: list[ChannelGroup],
    data: DataSource,
    *,
    teacher: nn.Module | None = None,
    batch_size: int = 32,
    max_samples: int = 256,
) -> dict[int, torch.Tensor]:
    """First-order Taylor importance (Molchanov et al. 2019, "Importance Estimation for Neural
    Network Pruning", eq. 8 over the group): per batch, (sum over the channel's parameters of
    gradient * weight)^2, averaged over batches.

    The loss is cross-entropy against labels when the data has them, else KL to the teacher's
    outputs when a teacher is given, else cross-entropy against the model's own top-1.
    """
    modules = dict(model.named_modules())
    inputs, labels = load_arrays(data, max_samples=max_samples)
    n = len(next(iter(inputs.values())))
    scores = {g.id: torch.zeros(g.size, dtype=torch.float64) for g in groups}
    was_training = model.training
    model.eval()  # BatchNorm statistics stay as trained; gradients still flow
    batches = 0
    try:
        for start in range(0, n, batch_size):
            batch = {k: v[start : start + batch_size] for k, v in inputs.items()}
            model.zero_grad(set_to_none=True)
            outputs = flatten_outputs(model(**batch))
            teacher_out = None
            if teacher is not None and labels is None:
                with torch.no_grad():
                    teacher_out = flatten_outputs(teacher(**batch))
            y = None if labels is None else labels[start : start + batch_size]
            loss = _taylor_loss(outputs, y, teacher_out)
            if not loss.requires_grad:
                raise CompressionError("Taylor importance: the model's output has no gradient")
            loss.backward()
            for group in groups:
                contrib = torch.zeros(group.size, dtype=torch.float64)
                for slot in group.slots:
                    module = modules[slot.module]
                    for attr, axis in slot_tensors(module, slot):
                        param = getattr(module, attr)
                        if not isinstance(param, nn.Parameter) or param.grad is None:
                            continue
                        gw = (param.grad.detach() * param.detach()).double()
                        contrib += per_channel(gw, axis, slot, group.size).sum(1)
                scores[group.id] += contrib.pow(2)
            batches += 1
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return {gid: s / max(batches, 1) for gid, s in scores.items()}


def group_scores(
    model: nn.Module,
    groups: list[ChannelGroup],
    importance: str,
    *,
    data: DataSource | None = None,
    teacher: nn.Module | None = None,
    batch_size: int = 32,
    max_samples: int = 256,
) -> dict[int, torch.Tensor]:
    """Importance of every channel of every group, by group id (higher = keep)."""
    modules = dict(model.named_modules())
    if importance == "taylor":
        if data is None:
            raise CompressionError("Importance 'taylor' needs data: pass --data (or [prune] data)")
        return taylor_scores(
            model, groups, data, teacher=teacher, batch_size=batch_size, max_samples=max_samples
        )
    out: dict[int, torch.Tensor] = {}
    for group in groups:
        score = bn_scale_scores(modules, group) if importance == "bn_scale" else None
        if score is None:
            if importance == "bn_scale":
                log.debug("group %s has no BatchNorm/LayerNorm: L2 importance used", group.name)
            score = magnitude_scores(modules, group, 1 if importance == "l1" else 2)
        out[group.id] = score
    return out
