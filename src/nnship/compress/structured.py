"""Structured pruning on Torch-Pruning's `DependencyGraph` (Fang et al. 2023, "DepGraph:
Towards Any Structural Pruning").

Torch-Pruning traces the model through autograd (any Python control flow, `nn.Conv2d`
subclasses that call `F.conv2d` with their own weights, residuals, concatenations, depthwise
and squeeze-excite blocks) and answers, for a layer's output channels, the *group* of every
parameter slice coupled to them; `group.prune()` shrinks them all. Which channels to remove is
planned by Torch-Pruning's pruner (`planning.py`). nnship adds here what Torch-Pruning leaves
to its user:

- the output layers found automatically (the layers a model output is computed from without
  another Conv/Linear in between: pruning them changes the output shapes); Torch-Pruning
  prunes every layer it is not told to ignore;
- a verified result: if the pruned model no longer runs (a layer whose channel count is
  hard-coded in a `view`, e.g. attention heads), each group is tried alone and the ones that
  break the forward pass are left whole, with the reason; Torch-Pruning cuts what its graph
  says and does not run the model again.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Any

import torch
import torch_pruning as tp
from torch import nn

from nnship.compress._data import flatten_outputs
from nnship.core.errors import CompressionError
from nnship.sources.binding import call_module, pass_by_keyword

log = logging.getLogger(__name__)
ROOT_TYPES = (nn.modules.conv._ConvNd, nn.Linear)


@dataclass
class PrunableGroup:
    """One set of coupled channels, named by its root layer (whose output channels it is)."""

    id: int
    name: str
    size: int
    producers: list[str] = field(default_factory=list)
    """Conv/Linear layers whose output channels are in the group (depthwise convs excluded:
    they follow their input)."""


def example_for_tracing(model: nn.Module, inputs: dict[str, torch.Tensor]) -> Any:
    """Example inputs as Torch-Pruning passes them: a dict (`model(**x)`) or a tuple."""
    return inputs if pass_by_keyword(model, list(inputs)) else tuple(inputs.values())


def build_graph(model: nn.Module, inputs: dict[str, torch.Tensor]) -> tp.DependencyGraph:
    """Torch-Pruning's dependency graph of `model` traced on `inputs` (eval mode, one forward
    with gradients enabled). Raises `CompressionError` naming the root cause when it fails."""
    try:
        with torch.enable_grad():
            return tp.DependencyGraph().build_dependency(
                model, example_inputs=example_for_tracing(model, inputs), verbose=False
            )
    except Exception as exc:
        raise graph_error(model, exc) from exc


def graph_error(model: nn.Module, exc: BaseException) -> CompressionError:
    """The error for a model Torch-Pruning cannot trace, naming the root cause."""
    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    return CompressionError(
        f"Cannot build the channel dependency graph of {type(model).__name__} "
        f"({type(root).__name__}: {root}); prune with method 'unstructured' instead"
    )


def is_depthwise(module: nn.Module) -> bool:
    return (
        isinstance(module, nn.modules.conv._ConvNd)
        and module.groups > 1
        and module.groups == module.in_channels == module.out_channels
    )


def call_order_and_outputs(
    model: nn.Module, inputs: dict[str, torch.Tensor]
) -> tuple[list[str], list[str]]:
    """(module names in first-call order, output layers).

    An output layer is a Conv/Linear that a model output is computed from through ops without
    parameters only (found by walking the outputs' autograd graph back to the first layer
    outputs on each path): its output channels are the model's output channels.
    """
    names = {id(m): n for n, m in model.named_modules()}
    order: list[str] = []
    produced: dict[Any, str] = {}

    def pre_hook(module: nn.Module, args: Any) -> None:
        name = names.get(id(module), "")
        if name and name not in order:
            order.append(name)

    def hook(module: nn.Module, args: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor) and output.grad_fn is not None:
            produced.setdefault(output.grad_fn, names.get(id(module), ""))

    handles = []
    for module in model.modules():
        handles.append(module.register_forward_pre_hook(pre_hook))
        if isinstance(module, ROOT_TYPES):
            handles.append(module.register_forward_hook(hook))
    try:
        with torch.enable_grad():
            outputs = flatten_outputs(call_module(model, inputs))
    finally:
        for handle in handles:
            handle.remove()
    found: list[str] = []
    stack = [t.grad_fn for t in outputs.values() if t.grad_fn is not None]
    seen: set[Any] = set()
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        if fn in produced:
            found.append(produced[fn])
            continue
        stack.extend(next_fn for next_fn, _ in fn.next_functions)
    return order, [n for n in order if n in found]


def _producers(graph: tp.DependencyGraph, group: Any, names: dict[nn.Module, str]) -> list[str]:
    out = set()
    for dep, _ in group:
        module = dep.target.module
        if (
            isinstance(module, ROOT_TYPES)
            and graph.is_out_channel_pruning_fn(dep.handler)
            and not is_depthwise(module)
        ):
            out.add(names[module])
    return sorted(out)


def prunable_groups(
    model: nn.Module, graph: tp.DependencyGraph, ignored: list[str]
) -> tuple[list[PrunableGroup], dict[str, Any]]:
    """The groups whose channels can be removed (none of their layers ignored), and the
    Torch-Pruning group (all channels) of each, by group name."""
    modules = dict(model.named_modules())
    names = {m: n for n, m in model.named_modules()}
    ignored_modules = [modules[n] for n in ignored]
    groups: list[PrunableGroup] = []
    tp_groups: dict[str, Any] = {}
    for group in graph.get_all_groups(ignored_layers=ignored_modules, root_module_types=ROOT_TYPES):
        producers = _producers(graph, group, names)
        if not producers:
            continue  # only depthwise convs: they follow the layer that feeds them
        # Named (and later re-found) by its first producer in the model's order, not by the
        # layer Torch-Pruning happened to reach first (which may be a depthwise conv).
        name = min(producers, key=list(modules).index)
        root = modules[name]
        size = graph.get_out_channels(root)
        if not size or name in tp_groups:
            continue
        groups.append(PrunableGroup(len(groups), name, int(size), producers))
        tp_groups[name] = graph.get_pruning_group(
            root, graph.get_pruner_of_module(root).prune_out_channels, list(range(int(size)))
        )
    return groups, tp_groups


def round_kept(size: int, kept: float, round_to: int) -> int:
    """`kept` channels of a group of `size` rounded to the nearest multiple of `round_to`
    (Python's `round`: a half goes to the even multiple), at least `round_to` and at most
    `size`; a group of at most `round_to` channels is kept whole."""
    if size <= round_to:
        return size
    rounded = int(round(kept / round_to)) * round_to
    return min(size, max(round_to, rounded))


def keep_count(size: int, ratio: float, round_to: int) -> int:
    """Channels a group of `size` keeps at `ratio`: size * (1 - ratio) rounded as `round_kept`
    does (0 keeps the group whole)."""
    return size if ratio <= 0 else round_kept(size, size * (1.0 - ratio), round_to)


def _apply(model: nn.Module, inputs, removals: dict[str, list[int]]) -> None:
    """Remove channels `removals[root layer]` of each group, in place (one fresh graph)."""
    graph = build_graph(model, inputs)
    modules = dict(model.named_modules())
    for name, idxs in removals.items():
        root = modules[name]
        pruner = graph.get_pruner_of_module(root)
        group = graph.get_pruning_group(root, pruner.prune_out_channels, idxs)
        if graph.check_pruning_group(group):
            group.prune()


def _runs(model: nn.Module, inputs, reference: dict[str, tuple]) -> str:
    """ "" when the model runs on `inputs` with the `reference` output shapes, else why not."""
    try:
        with torch.no_grad():
            shapes = {
                k: tuple(v.shape) for k, v in flatten_outputs(call_module(model, inputs)).items()
            }
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return "" if shapes == reference else f"output shapes {reference} -> {shapes}"


def apply_plan(
    model: nn.Module,
    inputs: dict[str, torch.Tensor],
    removals: dict[str, list[int]],
    reference: dict[str, tuple],
) -> tuple[nn.Module, dict[str, str]]:
    """A copy of `model` with the output channels `removals[group name]` of every group
    removed, and the groups left whole because removing their channels breaks the forward pass
    (with the error).

    All groups are removed at once; when the result does not run (or changes the output
    shapes), each group is tried on a copy and only the ones that keep it running are removed.
    """
    pruned = copy.deepcopy(model)
    _apply(pruned, inputs, removals)
    if not _runs(pruned, inputs, reference):
        return pruned, {}
    broken: dict[str, str] = {}
    accepted: dict[str, list[int]] = {}
    for name, idxs in removals.items():
        trial = copy.deepcopy(model)
        _apply(trial, inputs, {**accepted, name: idxs})
        why = _runs(trial, inputs, reference)
        if why:
            broken[name] = f"removing its channels breaks the forward pass ({why})"
        else:
            accepted[name] = idxs
    log.info("%d of %d groups left whole: they break the forward pass", len(broken), len(removals))
    pruned = copy.deepcopy(model)
    _apply(pruned, inputs, accepted)
    return pruned, broken
