"""`compress()`: the iterative schedule prune a step -> distill -> repeat (what the recipe's
[prune] + [distill] sections run). Small steps with distillation in between reach high ratios
without the accuracy collapse of one large cut (Zhu & Gupta 2017, "To prune, or not to prune").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from nnship.compress.config import DistillConfig, PruneConfig
from nnship.compress.distill import DistillResult, distill
from nnship.compress.prune import PruneResult, prune
from nnship.compress.trace import ExampleInputs
from nnship.core import DataSource
from nnship.core.errors import CompressionError

log = logging.getLogger(__name__)


@dataclass
class CompressResult:
    """The final student and every step's prune and distill results."""

    module: nn.Module
    prune_steps: list[PruneResult] = field(default_factory=list)
    distill_steps: list[DistillResult] = field(default_factory=list)

    @property
    def param_ratio(self) -> float:
        """Parameters of the final model / of the original."""
        return self.prune_steps[-1].params_after / max(self.prune_steps[0].params_before, 1)

    @property
    def flops_ratio(self) -> float:
        return self.prune_steps[-1].flops_after / max(self.prune_steps[0].flops_before, 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "param_ratio": self.param_ratio,
            "flops_ratio": self.flops_ratio,
            "prune_steps": [p.to_dict() for p in self.prune_steps],
            "distill_steps": [d.to_dict() for d in self.distill_steps],
        }


def step_ratio(final: float, step: int, steps: int, *, structured: bool) -> float:
    """The ratio to apply at `step` (1-based) of `steps` so the cumulative ratio grows linearly
    to `final`. Structured steps prune the already-smaller model (relative ratio); magnitude
    steps re-rank all weights, zeros included (absolute ratio)."""
    done, target = final * (step - 1) / steps, final * step / steps
    if not structured:
        return target
    return 1.0 - (1.0 - target) / (1.0 - done)


def compress(
    module: nn.Module,
    example_inputs: ExampleInputs,
    prune_config: PruneConfig,
    distill_config: DistillConfig | None = None,
    *,
    data: DataSource | None = None,
    val_data: DataSource | None = None,
) -> CompressResult:
    """Prune `module` in `prune_config.steps` steps, distilling from the unpruned `module` (the
    teacher) after each step when `distill_config` is given. `module` is not modified.

    `data` feeds Taylor importance and distillation (labels optional); it is required when
    distilling.
    """
    if distill_config is not None and data is None:
        raise CompressionError("Distillation needs data: give [data] calibration or --data")
    teacher = module.eval()
    structured = prune_config.method == "structured"
    result = CompressResult(module=module)
    current = module
    for step in range(1, prune_config.steps + 1):
        ratios = {
            k: step_ratio(v, step, prune_config.steps, structured=structured)
            for k, v in prune_config.layer_ratios.items()
        }
        if prune_config.method == "2:4":
            step_config = prune_config.model_copy(update={"steps": 1})
        else:
            step_config = prune_config.model_copy(
                update={
                    "ratio": step_ratio(
                        prune_config.ratio, step, prune_config.steps, structured=structured
                    ),
                    "layer_ratios": ratios,
                    "steps": 1,
                }
            )
        log.info("prune step %d/%d (ratio %.3f)", step, prune_config.steps, step_config.ratio)
        pruned = prune(current, example_inputs, step_config, data=data, teacher=teacher)
        result.prune_steps.append(pruned)
        current = pruned.module
        if distill_config is not None:
            assert data is not None
            distilled = distill(
                teacher, current, data, distill_config, val_data=val_data, keep_zeros=not structured
            )
            result.distill_steps.append(distilled)
            current = distilled.student
        if prune_config.method == "2:4":
            break  # the pattern is complete after one step
    result.module = current.eval()
    return result
