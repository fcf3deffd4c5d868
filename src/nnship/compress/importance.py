"""Channel importance of coupled groups, as Torch-Pruning `Importance` objects.

Each criterion scores a Torch-Pruning group (every parameter slice that loses channel c), the
"group importance" of DepGraph (Fang et al. 2023): a channel matters if it matters anywhere it
is used. `l1`/`l2`, `bn_scale` and `taylor` are Torch-Pruning's own criteria; what Torch-Pruning
leaves to its user is the gradient Taylor reads, which nnship computes from the user's data
(`accumulate_gradients`: labels, else a teacher's outputs, else the model's own top-1), the
planner (`planning.py`) scores a group that a criterion cannot score (`bn_scale` without a
normalization layer) by its L2 norm, where Torch-Pruning would leave it whole.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
import torch_pruning as tp
from torch import nn

from nnship.compress._data import flatten_outputs, load_arrays
from nnship.core import DataSource
from nnship.core.errors import CompressionError
from nnship.sources.binding import call_module

log = logging.getLogger(__name__)


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


def accumulate_gradients(
    model: nn.Module,
    data: DataSource,
    *,
    teacher: nn.Module | None = None,
    batch_size: int = 32,
    max_samples: int = 256,
) -> int:
    """Leave in every parameter's `.grad` the gradient of the mean loss over the first
    `max_samples` samples of `data` (model in eval mode: BatchNorm statistics stay as trained).
    The loss is cross-entropy against labels when the data has them, else KL to the
    teacher's outputs when a teacher is given, else cross-entropy against the model's own
    top-1. Returns the number of batches."""
    inputs, labels = load_arrays(data, max_samples=max_samples)
    n = len(next(iter(inputs.values())))
    batches = (n + batch_size - 1) // batch_size
    was_training = model.training
    model.eval()
    model.zero_grad(set_to_none=True)
    try:
        for start in range(0, n, batch_size):
            batch = {k: v[start : start + batch_size] for k, v in inputs.items()}
            with torch.enable_grad():
                outputs = flatten_outputs(call_module(model, batch))
            teacher_out = None
            if teacher is not None and labels is None:
                with torch.no_grad():
                    teacher_out = flatten_outputs(call_module(teacher, batch))
            y = None if labels is None else labels[start : start + batch_size]
            loss = _taylor_loss(outputs, y, teacher_out)
            if not loss.requires_grad:
                raise CompressionError("Taylor importance: the model's output has no gradient")
            (loss / batches).backward()
        for param in model.parameters():
            if param.grad is None and param.requires_grad:  # unused on this data: no sensitivity
                param.grad = torch.zeros_like(param)
    finally:
        model.train(was_training)
    return batches


def importance_criterion(importance: str) -> tp.importance.Importance:
    """The Torch-Pruning importance object for nnship's `importance` name. A group it cannot
    score (`bn_scale` without a normalization layer) is scored by `planning.ChannelPlanner` by
    its L2 norm."""
    if importance == "l1":
        return tp.importance.GroupMagnitudeImportance(p=1)
    if importance == "l2":
        return tp.importance.GroupMagnitudeImportance(p=2)
    if importance == "bn_scale":
        # |gamma| of the group's BatchNorm/LayerNorm layers (Liu et al. 2017, "Learning
        # Efficient Convolutional Networks through Network Slimming")
        return tp.importance.BNScaleImportance()
    if importance == "taylor":
        # First-order Taylor (Molchanov et al. 2019, "Importance Estimation for Neural Network
        # Pruning"): |sum over the channel's parameters of gradient * weight|, per group.
        return tp.importance.GroupTaylorImportance(multivariable=True)
    raise CompressionError(f"Unknown importance '{importance}'")
