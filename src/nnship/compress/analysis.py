"""Find a model's channel groups: trace it whole, or else its largest traceable submodules.

When the whole model cannot be traced (e.g. `torch.finfo(x.dtype)` or data-dependent control
flow in its `forward`), each direct child is traced on the inputs it received in a real forward
pass, recursing into children that cannot be traced either. A submodule's own inputs and
outputs stay unpruned, so e.g. a transformer's MLP hidden neurons can still be pruned.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from nnship.compress.graph import ChannelGroup, build_groups
from nnship.compress.trace import as_input_dict, trace_module
from nnship.errors import CompressionError

log = logging.getLogger(__name__)


@dataclass
class Analysis:
    groups: list[ChannelGroup]
    call_order: list[str]
    """Module names in the order they are first called."""
    trace_error: str = ""
    """Why the whole model could not be traced ("" when it could)."""


def _record_calls(
    model: nn.Module, inputs: dict[str, torch.Tensor]
) -> tuple[dict[str, tuple[Any, dict[str, Any]]], dict[str, int], list[str]]:
    names = {id(m): n for n, m in model.named_modules()}
    seen: dict[str, tuple[Any, dict[str, Any]]] = {}
    counts: dict[str, int] = {}
    order: list[str] = []

    def hook(module: nn.Module, args: Any, kwargs: Any) -> None:
        name = names.get(id(module), "")
        counts[name] = counts.get(name, 0) + 1
        if name not in seen:
            seen[name] = (args, kwargs)
            order.append(name)

    handles = [m.register_forward_pre_hook(hook, with_kwargs=True) for m in model.modules()]
    try:
        with torch.no_grad():
            model(**inputs)
    finally:
        for handle in handles:
            handle.remove()
    return seen, counts, order


def _prefixed(groups: list[ChannelGroup], prefix: str, first_id: int) -> list[ChannelGroup]:
    out = []
    for i, group in enumerate(groups):
        slots = [replace(s, module=f"{prefix}.{s.module}") for s in group.slots]
        out.append(ChannelGroup(first_id + i, group.size, slots, group.blocked))
    return out


def analyse(model: nn.Module, inputs: dict[str, torch.Tensor]) -> Analysis:
    """Channel groups of `model` (see `graph.build_groups`), falling back to submodules."""
    try:
        gm, _ = trace_module(model, inputs)
    except CompressionError as exc:
        trace_error = str(exc)
    else:
        modules = dict(model.named_modules())
        order = [str(n.target) for n in gm.graph.nodes if n.op == "call_module"]
        return Analysis(build_groups(gm), [n for n in dict.fromkeys(order) if n in modules])
    log.warning("%s; pruning inside traceable submodules only", trace_error)
    seen, counts, order = _record_calls(model, inputs)
    groups: list[ChannelGroup] = []

    def visit(prefix: str, module: nn.Module) -> None:
        for child_name, child in module.named_children():
            name = f"{prefix}.{child_name}" if prefix else child_name
            if not list(child.children()) or counts.get(name, 0) > 1:
                continue  # a leaf layer (nothing inside to couple) or shared
            if name not in seen:  # a container (ModuleList) never called itself
                visit(name, child)
                continue
            args, kwargs = seen[name]
            try:
                child_inputs = as_input_dict(child, args) | as_input_dict(child, kwargs)
                if not all(isinstance(v, torch.Tensor) for v in child_inputs.values()):
                    raise CompressionError("non-tensor inputs")
                gm, _ = trace_module(child, child_inputs)
            except CompressionError:
                visit(name, child)
                continue
            groups.extend(_prefixed(build_groups(gm), name, len(groups)))

    visit("", model)
    return Analysis(groups, order, trace_error)
