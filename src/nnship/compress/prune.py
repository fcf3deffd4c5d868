"""`prune()`: structured channel pruning or unstructured/2:4 sparsity of an `nn.Module`.

Contract: takes a float `nn.Module` and example inputs, never modifies them (works on a deep
copy), returns a `PruneResult` whose `module` is a plain dense module of the same classes with
the same outputs' shapes. `structured` runs on Torch-Pruning's dependency graph (any model
autograd can trace: Python control flow is fine); example inputs named differently from
`forward`'s parameters bind by position.
"""

from __future__ import annotations

import copy
import difflib
import fnmatch
import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from nnship.compress._data import check_data_inputs, flatten_outputs, load_arrays
from nnship.compress.config import PruneConfig
from nnship.compress.flops import count_flops, count_nonzero_parameters, count_parameters
from nnship.compress.importance import accumulate_gradients, importance_criterion
from nnship.compress.planning import ChannelPlanner
from nnship.compress.recalibrate import batchnorm_layers, recalibrate_if_closer
from nnship.compress.structured import apply_plan, call_order_and_outputs, prunable_groups
from nnship.compress.trace import ExampleInputs, as_input_dict
from nnship.compress.unstructured import (
    PRUNABLE,
    magnitude_prune,
    sensitivity_prune,
    two_four_prune,
)
from nnship.core import DataSource
from nnship.core.errors import CompressionError
from nnship.sources.binding import call_module

log = logging.getLogger(__name__)


@dataclass
class GroupChange:
    """Channels of one coupled group before and after pruning."""

    name: str
    producers: list[str]
    channels_before: int
    channels_after: int


@dataclass
class PruneResult:
    """The pruned module and what changed. Ratios are after / before (1.0 = unchanged)."""

    module: nn.Module
    config: PruneConfig
    params_before: int
    params_after: int
    nonzero_before: int
    nonzero_after: int
    flops_before: int
    flops_after: int
    groups: list[GroupChange] = field(default_factory=list)
    layer_sparsity: dict[str, float] = field(default_factory=dict)
    """Unstructured/2:4: fraction of zero weights per pruned layer (0..1)."""
    sensitivity: dict[str, list[float]] = field(default_factory=dict)
    """Scope `sensitivity`: per layer, its relative output error at sparsity 0.1 ... 0.9."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Group (named by its first producing layer) or layer -> why it was not pruned."""
    protected: list[str] = field(default_factory=list)
    recalibrated: list[str] = field(default_factory=list)
    """BatchNorm layers whose running statistics were re-estimated on the data after pruning."""
    bn_divergence: tuple[float, float] | None = None
    """With data: divergence of the pruned model's outputs from the unpruned model's on the
    data (KL for classifiers, else relative MSE) with the old and with re-estimated BatchNorm
    statistics; recalibration is kept only when the second is not larger."""
    stale_batchnorm: bool = False
    """True when the model has BatchNorm layers that kept their pre-pruning statistics (no data
    given, or `recalibrate_bn = false`): expect low accuracy until distillation."""

    @property
    def param_ratio(self) -> float:
        return self.params_after / max(self.params_before, 1)

    @property
    def nonzero_ratio(self) -> float:
        return self.nonzero_after / max(self.nonzero_before, 1)

    @property
    def flops_ratio(self) -> float:
        return self.flops_after / max(self.flops_before, 1)

    @property
    def channel_ratio(self) -> float:
        """Fraction of channels removed over all pruned groups (the achieved `ratio`)."""
        before = sum(g.channels_before for g in self.groups)
        return 1.0 - sum(g.channels_after for g in self.groups) / max(before, 1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (without the module)."""
        return {
            "config": self.config.model_dump(),
            "params_before": self.params_before,
            "params_after": self.params_after,
            "param_ratio": self.param_ratio,
            "nonzero_before": self.nonzero_before,
            "nonzero_after": self.nonzero_after,
            "nonzero_ratio": self.nonzero_ratio,
            "flops_before": self.flops_before,
            "flops_after": self.flops_after,
            "flops_ratio": self.flops_ratio,
            "channel_ratio": self.channel_ratio,
            "groups": [vars(g) for g in self.groups],
            "layer_sparsity": dict(self.layer_sparsity),
            "sensitivity": dict(self.sensitivity),
            "skipped": dict(self.skipped),
            "protected": list(self.protected),
            "recalibrated_bn": list(self.recalibrated),
            "bn_divergence": self.bn_divergence,
            "stale_batchnorm": self.stale_batchnorm,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], module: nn.Module) -> PruneResult:
        """The result `to_dict()` summarised (after a JSON round trip too), around `module`
        (the pruned module, which the summary does not hold)."""
        divergence = data.get("bn_divergence")
        return cls(
            module=module,
            config=PruneConfig.model_validate(data["config"]),
            params_before=int(data["params_before"]),
            params_after=int(data["params_after"]),
            nonzero_before=int(data["nonzero_before"]),
            nonzero_after=int(data["nonzero_after"]),
            flops_before=int(data["flops_before"]),
            flops_after=int(data["flops_after"]),
            groups=[GroupChange(**g) for g in data.get("groups", [])],
            layer_sparsity=dict(data.get("layer_sparsity", {})),
            sensitivity={k: list(v) for k, v in data.get("sensitivity", {}).items()},
            skipped=dict(data.get("skipped", {})),
            protected=list(data.get("protected", [])),
            recalibrated=list(data.get("recalibrated_bn", [])),
            bn_divergence=None if divergence is None else (divergence[0], divergence[1]),
            stale_batchnorm=bool(data.get("stale_batchnorm", False)),
        )


def _match_names(model: nn.Module, patterns: list[str], what: str) -> list[str]:
    names = [n for n, _ in model.named_modules() if n]
    matched: list[str] = []
    for pattern in patterns:
        hits = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        if not hits:
            close = difflib.get_close_matches(pattern, names, n=3)
            hint = f"; did you mean {close}?" if close else f"; layers are e.g. {names[:6]}"
            raise CompressionError(f"{what} '{pattern}' matches no layer of the model{hint}")
        matched += hits
    return list(dict.fromkeys(matched))


def _default_protected(model: nn.Module, order: list[str] | None) -> list[str]:
    """The first convolution and the last Linear (the classifier head), in call order when
    known, else in registration order."""
    modules = dict(model.named_modules())
    order = [n for n in (order or list(modules)) if n in modules and n]
    convs = [n for n in order if isinstance(modules[n], nn.modules.conv._ConvNd)]
    linears = [n for n in order if isinstance(modules[n], nn.Linear)]
    return ([convs[0]] if convs else []) + ([linears[-1]] if linears else [])


def _output_shapes(model: nn.Module, inputs: dict[str, torch.Tensor]) -> dict[str, tuple]:
    with torch.no_grad():
        return {k: tuple(v.shape) for k, v in flatten_outputs(call_module(model, inputs)).items()}


def _prune_structured(
    model: nn.Module,
    inputs: dict[str, torch.Tensor],
    config: PruneConfig,
    data: DataSource | None,
    teacher: nn.Module | None,
    result: PruneResult,
) -> nn.Module:
    order, outputs = call_order_and_outputs(model, inputs)
    modules = dict(model.named_modules())
    if config.protect is None:
        convs = [n for n in order if isinstance(modules[n], nn.modules.conv._ConvNd)]
        protected = convs[:1] + [n for n in outputs if n not in convs[:1]]
    else:
        protected = _match_names(model, config.protect, "Protected layer")
    result.protected = protected
    for name in protected:
        result.skipped[name] = f"protected layer '{name}'"
    for name in outputs:
        result.skipped[name] = "model output"
    # Torch-Pruning ignores the submodules of an ignored module too: name them all, so the
    # groups listed here are the ones its planner ranks.
    ignored_modules = [modules[n] for n in dict.fromkeys(protected + outputs)]
    names = {m: n for n, m in model.named_modules()}
    ignored = list(dict.fromkeys(names[m] for top in ignored_modules for m in top.modules()))
    if config.importance == "taylor" and data is None:
        raise CompressionError("Importance 'taylor' needs data: pass --data (or [prune] data)")
    criterion = importance_criterion(config.importance)
    planner = ChannelPlanner(model, inputs, config, ignored_modules, criterion)
    groups, _ = prunable_groups(model, planner.DG, ignored)
    if not groups:
        raise CompressionError(
            f"{type(model).__name__} has no prunable channel group; "
            + "; ".join(f"{k}: {v}" for k, v in list(result.skipped.items())[:6])
        )
    if config.importance == "taylor":
        assert data is not None
        accumulate_gradients(
            model,
            data,
            teacher=teacher,
            batch_size=config.batch_size,
            max_samples=config.max_samples,
        )
    try:
        removals = planner.plan(groups)
    finally:
        if config.importance == "taylor":
            model.zero_grad(set_to_none=True)
    del planner  # its graph holds the unpruned model's autograd trace
    pruned, broken = apply_plan(model, inputs, removals, _output_shapes(model, inputs))
    result.skipped.update(broken)
    result.groups = [
        GroupChange(
            g.name,
            g.producers,
            g.size,
            g.size if g.name in broken else g.size - len(removals.get(g.name, [])),
        )
        for g in groups
    ]
    return pruned


def _prune_weights(
    model: nn.Module,
    inputs: dict[str, torch.Tensor],
    config: PruneConfig,
    data: DataSource | None,
    result: PruneResult,
) -> None:
    protected = (
        _default_protected(model, None)
        if config.protect is None
        else _match_names(model, config.protect, "Protected layer")
    )
    result.protected = protected
    layers = {
        n: m for n, m in model.named_modules() if isinstance(m, PRUNABLE) and n not in protected
    }
    if not layers:
        raise CompressionError(f"{type(model).__name__} has no unprotected Conv/Linear layer")
    if config.method == "2:4":
        result.layer_sparsity, result.skipped = two_four_prune(layers)
    elif config.scope == "sensitivity":
        probe = inputs
        if data is not None:
            probe, _ = load_arrays(data, max_samples=min(config.batch_size, 16))
        result.layer_sparsity, result.sensitivity = sensitivity_prune(
            model, layers, config.ratio, probe, layer_ratios=config.layer_ratios
        )
    else:
        result.layer_sparsity = magnitude_prune(
            model, layers, config.ratio, scope=config.scope, layer_ratios=config.layer_ratios
        )


def prune(
    module: nn.Module,
    example_inputs: ExampleInputs,
    config: PruneConfig | None = None,
    *,
    data: DataSource | None = None,
    teacher: nn.Module | None = None,
) -> PruneResult:
    """Prune a copy of `module` as `config` says (default `PruneConfig()`: structured, ratio 0.5,
    L1, first conv and classifier protected, channels rounded to multiples of 8).

    `example_inputs`: keyword inputs of `forward` (dict of tensors/arrays, or a tensor/tuple in
    positional order); used for tracing, FLOPs and the final check. `data`: needed for Taylor
    importance (labels are used when present, else `teacher`'s outputs, else the model's own
    top-1); when given, BatchNorm statistics are re-estimated on its first
    `config.max_samples` samples after pruning (`config.recalibrate_bn`, default on) and kept
    when they bring the outputs closer to the unpruned model's on those samples.
    Raises `CompressionError` for untraceable models, unknown layer names, or a pruned model
    that no longer runs.
    """
    config = config or PruneConfig()
    inputs = as_input_dict(module, example_inputs)
    if data is not None:
        check_data_inputs(module, data.input_names, what="model", data_desc=data.describe())
    if config.layer_ratios:
        _match_names(module, list(config.layer_ratios), "layer_ratios key")
    model = copy.deepcopy(module)
    was_training = model.training
    model.eval()
    reference = _output_shapes(model, inputs)
    result = PruneResult(
        module=model,
        config=config,
        params_before=count_parameters(model),
        params_after=0,
        nonzero_before=count_nonzero_parameters(model),
        nonzero_after=0,
        flops_before=count_flops(model, inputs),
        flops_after=0,
    )
    if config.method == "structured":
        model = result.module = _prune_structured(model, inputs, config, data, teacher, result)
    else:
        _prune_weights(model, inputs, config, data, result)
    if data is not None and config.recalibrate_bn:
        result.recalibrated, before, after = recalibrate_if_closer(
            model, module, data, max_samples=config.max_samples, batch_size=config.batch_size
        )
        result.bn_divergence = (before, after)
        result.stale_batchnorm = not result.recalibrated and bool(batchnorm_layers(model))
    else:
        result.stale_batchnorm = bool(batchnorm_layers(model))
    try:
        after = _output_shapes(model, inputs)
    except Exception as exc:
        raise CompressionError(
            f"The pruned {type(model).__name__} no longer runs ({type(exc).__name__}: {exc}); "
            "a layer probably hard-codes a channel count: protect it (--protect NAME)"
        ) from exc
    if after != reference:
        raise CompressionError(f"Pruning changed the output shapes {reference} -> {after}")
    result.params_after = count_parameters(model)
    result.nonzero_after = count_nonzero_parameters(model)
    result.flops_after = count_flops(model, inputs)
    model.train(was_training)
    log.info(
        "pruned %s: params %.3f, FLOPs %.3f of the original",
        type(model).__name__,
        result.param_ratio,
        result.flops_ratio,
    )
    return result
