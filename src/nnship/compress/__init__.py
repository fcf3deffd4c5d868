"""Structured pruning, unstructured/2:4 sparsity and knowledge distillation of `nn.Module`s.

Public surface (see docs/pruning.md):
- `prune(module, example_inputs, config, *, data=None, teacher=None) -> PruneResult`
- `distill(teacher, student, data, config, *, val_data=None, keep_zeros=False) -> DistillResult`
- `compress(module, example_inputs, prune_config, distill_config=None, *, data=None,
  val_data=None, student=None, keep_zeros=None, on_epoch=None, store=None) -> CompressResult`
  (prune -> distill in `steps` steps: what `nnship prune`, `nnship distill` and `nnship build`
  run; `Phase`/`PhaseStore` let a caller cache each step)
- `recalibrate_batchnorm(module, data, *, max_samples=256, batch_size=32) -> [layer names]`
  (what `prune()` runs after pruning when it gets data)
- `PruneConfig`, `DistillConfig` (the recipe's [prune] / [distill] sections)
- `count_parameters`, `count_flops`, `torch_latency_ms`
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from nnship.compress.config import DistillConfig, PruneConfig

# Everything but the configs imports torch: it is loaded on first use (PEP 562), so the recipe
# (which reads PruneConfig/DistillConfig) and `import nnship.api` never import torch.
_LAZY = {
    "DistillResult": "nnship.compress.distill",
    "EpochStats": "nnship.compress.distill",
    "distill": "nnship.compress.distill",
    "count_flops": "nnship.compress.flops",
    "count_nonzero_parameters": "nnship.compress.flops",
    "count_parameters": "nnship.compress.flops",
    "torch_latency_ms": "nnship.compress.flops",
    "GroupChange": "nnship.compress.prune",
    "PruneResult": "nnship.compress.prune",
    "prune": "nnship.compress.prune",
    "recalibrate_batchnorm": "nnship.compress.recalibrate",
    "CompressResult": "nnship.compress.schedule",
    "Phase": "nnship.compress.schedule",
    "PhaseStore": "nnship.compress.schedule",
    "compress": "nnship.compress.schedule",
}

if TYPE_CHECKING:
    from nnship.compress.distill import DistillResult, EpochStats, distill
    from nnship.compress.flops import (
        count_flops,
        count_nonzero_parameters,
        count_parameters,
        torch_latency_ms,
    )
    from nnship.compress.prune import GroupChange, PruneResult, prune
    from nnship.compress.recalibrate import recalibrate_batchnorm
    from nnship.compress.schedule import CompressResult, Phase, PhaseStore, compress


class _Package(types.ModuleType):
    """Keeps `nnship.compress.prune` / `.distill` the functions, as the eager imports did:
    importing the submodule of the same name would otherwise rebind the package attribute to
    the submodule."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == value.__name__:
            value = getattr(value, name, value)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nnship.compress' has no attribute '{name}'")


__all__ = [
    "CompressResult",
    "DistillConfig",
    "DistillResult",
    "EpochStats",
    "GroupChange",
    "Phase",
    "PhaseStore",
    "PruneConfig",
    "PruneResult",
    "compress",
    "count_flops",
    "count_nonzero_parameters",
    "count_parameters",
    "distill",
    "prune",
    "recalibrate_batchnorm",
    "torch_latency_ms",
]
