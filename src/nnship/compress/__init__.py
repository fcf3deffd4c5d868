"""Structured pruning, unstructured/2:4 sparsity and knowledge distillation of `nn.Module`s.

Public surface (see docs/pruning.md):
- `prune(module, example_inputs, config, *, data=None, teacher=None) -> PruneResult`
- `distill(teacher, student, data, config, *, val_data=None, keep_zeros=False) -> DistillResult`
- `compress(module, example_inputs, prune_config, distill_config=None, *, data=None,
  val_data=None) -> CompressResult` (the iterative prune -> distill schedule)
- `recalibrate_batchnorm(module, data, *, max_samples=256, batch_size=32) -> [layer names]`
  (what `prune()` runs after pruning when it gets data)
- `PruneConfig`, `DistillConfig` (the recipe's [prune] / [distill] sections)
- `count_parameters`, `count_flops`, `torch_latency_ms`
"""

from nnship.compress.config import DistillConfig, PruneConfig
from nnship.compress.distill import DistillResult, EpochStats, distill
from nnship.compress.flops import (
    count_flops,
    count_nonzero_parameters,
    count_parameters,
    torch_latency_ms,
)
from nnship.compress.prune import GroupChange, PruneResult, prune
from nnship.compress.recalibrate import recalibrate_batchnorm
from nnship.compress.schedule import CompressResult, compress

__all__ = [
    "CompressResult",
    "DistillConfig",
    "DistillResult",
    "EpochStats",
    "GroupChange",
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
