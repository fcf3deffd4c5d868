"""BatchNorm recalibration: re-estimate running statistics after pruning.

Removing channels changes what every later BatchNorm sees, so its stored running mean/variance
no longer describe its input and the pruned model's accuracy collapses (often to chance) even
though its weights are fine. Re-estimating the statistics on a few batches of data, without any
gradient step, restores most of it (the "adaptive BN" step of EagleEye, Li et al. 2020; the
same as `torch.optim.swa_utils.update_bn`, which this mirrors but for keyword inputs and
without touching dropout).
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from nnship.compress._data import load_arrays
from nnship.core import DataSource
from nnship.sources.binding import call_module

log = logging.getLogger(__name__)


def batchnorm_layers(module: nn.Module) -> dict[str, nn.modules.batchnorm._BatchNorm]:
    """Named BatchNorm layers of `module` that track running statistics."""
    return {
        name: m
        for name, m in module.named_modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    }


@torch.no_grad()
def recalibrate_batchnorm(
    module: nn.Module,
    data: DataSource,
    *,
    max_samples: int = 256,
    batch_size: int = 32,
) -> list[str]:
    """Re-estimate the running mean/variance of every BatchNorm of `module` (in place) from the
    first `max_samples` samples of `data` (default 256), `batch_size` (default 32) at a time.

    Only the BatchNorm layers run in train mode, with `momentum=None` (a cumulative average
    over the batches: the result does not depend on the old statistics); dropout and everything
    else stay in eval mode, no gradient is computed and no weight changes. Modules that cannot
    change mode (a loaded `.pt2` program) are left as they are. Returns the names of the
    recalibrated layers (empty when there are none). `module` is left in eval mode.
    """
    layers = batchnorm_layers(module)
    if not layers:
        return []
    inputs, _ = load_arrays(data, max_samples=max_samples)
    return recalibrate_on_tensors(module, inputs, batch_size=batch_size)


@torch.no_grad()
def recalibrate_on_tensors(
    module: nn.Module, inputs: dict[str, torch.Tensor], *, batch_size: int = 32
) -> list[str]:
    """`recalibrate_batchnorm` on inputs already in memory (all of them)."""
    layers = batchnorm_layers(module)
    if not layers:
        return []
    saved = {name: (bn.momentum, bn.training) for name, bn in layers.items()}
    module.eval()
    n = len(next(iter(inputs.values())))
    try:
        for bn in layers.values():
            bn.reset_running_stats()
            bn.momentum = None
            bn.train()
        for start in range(0, n, batch_size):
            if n - start < 2 and start > 0:
                break  # a batch of one sample has no variance over the batch axis
            call_module(module, {k: v[start : start + batch_size] for k, v in inputs.items()})
    finally:
        for name, bn in layers.items():
            bn.momentum, _ = saved[name]
            bn.eval()
    log.info("recalibrated %d BatchNorm layers on %d samples", len(layers), n)
    return list(layers)


def _divergence(reference: dict[str, torch.Tensor], outputs: dict[str, torch.Tensor]) -> float:
    """How far `outputs` are from `reference`: KL(softmax(ref) || softmax(out)) for class
    logits (2-D, several classes), else the MSE relative to the reference's variance; summed
    over outputs."""
    total = 0.0
    for name, ref in reference.items():
        out = outputs[name].float()
        ref = ref.float()
        if ref.ndim == 2 and ref.shape[1] > 1:
            total += float(
                torch.nn.functional.kl_div(
                    out.log_softmax(-1), ref.log_softmax(-1), reduction="batchmean", log_target=True
                )
            )
        else:
            total += float((out - ref).pow(2).mean() / (ref.var() + 1e-12))
    return total


@torch.no_grad()
def _outputs(module: nn.Module, inputs: dict[str, torch.Tensor], batch_size: int):
    from nnship.compress._data import flatten_outputs

    n = len(next(iter(inputs.values())))
    parts: dict[str, list[torch.Tensor]] = {}
    for start in range(0, n, batch_size):
        batch = {k: v[start : start + batch_size] for k, v in inputs.items()}
        for k, v in flatten_outputs(call_module(module, batch)).items():
            parts.setdefault(k, []).append(v)
    return {k: torch.cat(v) for k, v in parts.items()}


@torch.no_grad()
def recalibrate_if_closer(
    module: nn.Module,
    reference: nn.Module,
    data: DataSource,
    *,
    max_samples: int = 256,
    batch_size: int = 32,
) -> tuple[list[str], float, float]:
    """`recalibrate_batchnorm`, kept only when it brings `module`'s outputs closer to
    `reference`'s (the unpruned model) on the same samples; otherwise the statistics are put
    back. A few hundred samples of a narrow distribution (crops of a handful of photos) can
    estimate worse statistics than the ones a lightly pruned model already has: measured on
    EfficientNet-Lite0 at 10% sparsity, recalibrating on 32 crops dropped top-1 agreement from
    83% to 22%. Returns (recalibrated layer names, or [] when rejected; divergence before;
    divergence after), the divergence being KL to the reference for classifiers, else
    relative MSE."""
    layers = batchnorm_layers(module)
    if not layers:
        return [], 0.0, 0.0
    inputs, _ = load_arrays(data, max_samples=max_samples)
    module.eval()
    was_training = reference.training
    try:
        target = _outputs(reference.eval(), inputs, batch_size)
    finally:
        reference.train(was_training)
    before = _divergence(target, _outputs(module, inputs, batch_size))
    saved = {n: {k: v.clone() for k, v in bn.state_dict().items()} for n, bn in layers.items()}
    names = recalibrate_on_tensors(module, inputs, batch_size=batch_size)
    after = _divergence(target, _outputs(module, inputs, batch_size))
    if after <= before:
        return names, before, after
    for name, bn in layers.items():
        bn.load_state_dict(saved[name])
    log.info(
        "BatchNorm recalibration rejected: divergence to the unpruned model %.4g -> %.4g",
        before,
        after,
    )
    return [], before, after
