"""Symbolic tracing with torch.fx for pruning analysis, with errors that name the module and op.

torch.fx (not torch.export) because pruning rewrites the user's own `nn.Module`s in place:
fx keeps every standard layer as one `call_module` node named like the module, so the
dependency graph maps straight back to the layers whose parameters shrink.
"""

from __future__ import annotations

import inspect
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from nnship.errors import CompressionError

ExampleInputs = Mapping[str, Any] | Sequence[Any] | torch.Tensor | np.ndarray


def forward_parameters(module: nn.Module) -> list[inspect.Parameter]:
    """The parameters of `module.forward` (without `self`)."""
    try:
        return list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):  # builtins / C++ modules: no signature
        return []


def as_input_dict(module: nn.Module, example_inputs: ExampleInputs) -> dict[str, torch.Tensor]:
    """Example inputs as keyword arguments of `module.forward` (tensors, numpy arrays, a single
    tensor, or a tuple in positional order)."""
    if isinstance(example_inputs, Mapping):
        items = dict(example_inputs)
    else:
        values = (
            [example_inputs]
            if isinstance(example_inputs, torch.Tensor | np.ndarray)
            else list(example_inputs)
        )
        names = [
            p.name
            for p in forward_parameters(module)
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if len(values) > len(names):
            raise CompressionError(
                f"{len(values)} example inputs given but {type(module).__name__}.forward takes "
                f"{len(names)} positional inputs {names}"
            )
        items = dict(zip(names, values))
    return {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in items.items()}


class _LocatingTracer(fx.Tracer):
    """An fx tracer that remembers which module was being traced when tracing failed."""

    def __init__(self) -> None:
        super().__init__()
        self._stack: list[tuple[str, str]] = []
        self.failed_in: list[tuple[str, str]] | None = None

    def call_module(self, m: nn.Module, forward: Any, args: Any, kwargs: Any) -> Any:
        name = self.path_of_module(m) if m is not self.root else ""
        self._stack.append((name, type(m).__name__))
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception:
            if self.failed_in is None:
                self.failed_in = list(self._stack)
            raise
        finally:
            self._stack.pop()


def _user_frame(exc: BaseException) -> str:
    """'file:line: code' of the innermost traceback frame outside torch (the op that failed)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/torch/" not in f.filename]
    if not frames:
        return ""
    frame = frames[-1]
    return f" at {frame.filename}:{frame.lineno}: `{(frame.line or '').strip()}`"


def trace_module(
    module: nn.Module, inputs: dict[str, torch.Tensor]
) -> tuple[fx.GraphModule, list[str]]:
    """Trace `module` with torch.fx and annotate every node with its example shape.

    Returns the graph module (sharing the submodules of `module`) and the placeholder names.
    Raises `CompressionError` naming the module, the op and the source line that cannot be traced.
    """
    params = forward_parameters(module)
    names = {p.name for p in params}
    unknown = [k for k in inputs if k not in names] if names else []
    if unknown and not any(p.kind == p.VAR_KEYWORD for p in params):
        raise CompressionError(
            f"Example inputs {unknown} are not arguments of {type(module).__name__}.forward "
            f"(which takes {sorted(names)})"
        )
    concrete = {
        p.name: p.default
        for p in params
        if p.name not in inputs and p.default is not inspect.Parameter.empty
    }
    tracer = _LocatingTracer()
    try:
        graph = tracer.trace(module, concrete_args=concrete or None)
    except Exception as exc:
        where = tracer.failed_in or []
        inner = where[-1] if where else ("", type(module).__name__)
        label = f"module '{inner[0]}' ({inner[1]})" if inner[0] else f"model {inner[1]}"
        raise CompressionError(
            f"Cannot trace {label} for pruning{_user_frame(exc)}: {type(exc).__name__}: {exc}. "
            "Structured pruning needs a model torch.fx can trace (no data-dependent Python "
            "control flow on tensors); rewrite that op or use method 'unstructured'"
        ) from exc
    gm = fx.GraphModule(tracer.root, graph)
    placeholders = [n.target for n in gm.graph.nodes if n.op == "placeholder"]
    args = []
    for name in placeholders:
        key = str(name).lstrip("*")
        if key in inputs:
            args.append(inputs[key])
        elif key in concrete:
            args.append(concrete[key])
        else:
            raise CompressionError(
                f"No example input for '{key}' of {type(module).__name__}.forward; "
                "pass it with --input NAME:SHAPE"
            )
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(*args)
    except Exception as exc:
        raise CompressionError(
            f"{type(module).__name__} failed to run on the example inputs "
            f"{ {k: tuple(v.shape) for k, v in inputs.items()} }: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        module.train(was_training)
    return gm, [str(p) for p in placeholders]
