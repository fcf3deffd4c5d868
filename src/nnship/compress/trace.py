"""Example inputs of a module's `forward` as a named dict (what pruning traces and checks with).

The dependency graph itself is Torch-Pruning's (see structured.py), traced through autograd,
so no torch.fx tracing is needed any more.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from nnship.core.errors import CompressionError

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
