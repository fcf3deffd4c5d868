"""How declared input names bind to a module's `forward`: by keyword or by position.

Users name data tensors freely (`x`, `input`, `pixel_values`) while a model's `forward` names
its parameters as its author chose (`inputs`, `img`). When the declared names are `forward`'s
parameters they bind by keyword; otherwise, when their count fits `forward`'s positional
parameters, they bind by position in declared order. One rule, used by the torch runner, the
exporter, pruning and distillation alike.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from nnship.core.errors import DataError

log = logging.getLogger(__name__)
_LOGGED: set[tuple[str, tuple[str, ...]]] = set()


def pass_by_keyword(module: Any, names: Sequence[str]) -> bool:
    """True when inputs `names` go to `module.forward` by keyword, False by position.

    Raises `DataError` naming both lists when neither fits (wrong count, unknown keywords).
    """
    declared = getattr(module, "input_names", None)  # a loaded .pt2 (sources.pt2.ExportedModule)
    if isinstance(declared, list) and declared and isinstance(module, nn.Module):
        if set(names) <= set(declared):
            return True
        if len(names) == len(declared):
            return False
        raise DataError(
            f"Inputs {list(names)} do not match the exported program's inputs {declared}"
        )
    try:
        params = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError, AttributeError):  # builtins/compiled modules: trust the names
        return True
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return True
    keyword = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    if set(names) <= keyword:
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    if any(p.kind is p.VAR_POSITIONAL for p in params) or len(required) <= len(names) <= len(
        positional
    ):
        key = (type(module).__qualname__, tuple(names))
        if key not in _LOGGED:  # once per class and names, not once per batch
            _LOGGED.add(key)
            log.debug("inputs %s passed to %s.forward by position", list(names), key[0])
        return False
    raise DataError(
        f"Inputs {list(names)} do not match {type(module).__name__}.forward"
        f"({', '.join(p.name for p in params)}); name the inputs after forward's parameters"
    )


def call_module(module: nn.Module | Any, inputs: Mapping[str, Any]) -> Any:
    """`module(**inputs)` when the names are `forward`'s parameters, else `module(*values)` in
    the mapping's order (see `pass_by_keyword`)."""
    if pass_by_keyword(module, list(inputs)):
        return module(**inputs)
    return module(*inputs.values())
