"""The recipe's `[validate]` section: gates and latency settings (pydantic, `extra="forbid"`).

Units are part of every field name or docstring: percentages are 0..100, latency is
milliseconds, sizes are megabytes (10**6 bytes), SQNR is decibels.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from nnship.metrics.config import LatencyConfig
from nnship.metrics.task.config import (
    METRIC_NAMES,
    TaskGate,
    TaskMetricConfig,
    parse_task_gates,
)

Task = Literal["auto", "classification", "regression"]


class Gates(BaseModel):
    """Thresholds every candidate row must meet. Every gate is off (None) by default.

    - `max_top1_drop`: percentage points. With labels: baseline accuracy minus candidate
      accuracy. Without labels: 100 minus top-1 agreement with the baseline.
    - `min_top1_agreement` / `min_top5_agreement`: percent of samples whose baseline top-1 class
      is the candidate's top-1 class / among the candidate's top-5 classes.
    - `min_cosine`: the per-sample cosine similarity averaged over samples, worst output.
    - `min_sqnr_db`: signal-to-quantization-noise ratio in dB, worst output.
    - `max_abs_error`: largest absolute difference over every element of every output.
    - `max_latency_ms`: the `latency_percentile` latency (p50 by default) in milliseconds at the
      first latency batch size.
    - `max_size_mb`: size on disk in megabytes (10**6 bytes).
    - `task`: bounds on the task metric's values (`[validate.metric]`), by name:
      `task = { det_f1 = ">= 0.95", cer = "<= 0.02" }`; a value the metric did not produce
      fails its gate.
    """

    model_config = ConfigDict(extra="forbid")

    max_top1_drop: float | None = Field(default=None, ge=0, le=100)
    min_top1_agreement: float | None = Field(default=None, ge=0, le=100)
    min_top5_agreement: float | None = Field(default=None, ge=0, le=100)
    min_cosine: float | None = Field(default=None, ge=-1, le=1)
    min_sqnr_db: float | None = None
    max_abs_error: float | None = Field(default=None, ge=0)
    max_latency_ms: float | None = Field(default=None, gt=0)
    latency_percentile: Literal[50, 90, 99] = 50
    max_size_mb: float | None = Field(default=None, gt=0)
    task: dict[str, str] = Field(default_factory=dict)

    @field_validator("task")
    @classmethod
    def _task_bounds(cls, value: dict[str, str]) -> dict[str, str]:
        parse_task_gates(value)  # ">= 0.95" / "<= 0.02"; raises naming the entry
        return value

    def active(self) -> dict[str, float]:
        """The numeric gates that are set, by name (latency_percentile is a setting, not a gate;
        the task metric's bounds are `task_gates()`)."""
        data = self.model_dump(exclude={"latency_percentile", "task"})
        return {k: v for k, v in data.items() if v is not None}

    def task_gates(self) -> list[TaskGate]:
        """The bounds on task metric values (`task = {name = ">= x"}`)."""
        return parse_task_gates(self.task)


class ValidateConfig(BaseModel):
    """The `[validate]` recipe section.

    `batch_size` is the batch size of the accuracy pass (default 32); `max_samples` caps the
    evaluation samples (default: all). `task="auto"` treats an output as classification logits
    when it is 2-D [N, C] with C >= 2.
    """

    model_config = ConfigDict(extra="forbid")

    gates: Gates = Field(default_factory=Gates)
    latency: LatencyConfig = Field(default_factory=LatencyConfig)
    batch_size: int = Field(default=32, ge=1)
    max_samples: int | None = Field(default=None, ge=1)
    task: Task = "auto"
    metric: TaskMetricConfig | None = None
    """The task metric (`[validate.metric]`, see `nnship.metrics.task.config`): what the
    model ships on, scored against the float baseline for every artifact."""

    @model_validator(mode="after")
    def _task_gates_name_the_metric(self) -> ValidateConfig:
        """A task gate needs a task metric, and a built-in family's gate one of its values
        (a user function's names are known only when it runs)."""
        names = list(self.gates.task)
        if not names:
            return self
        if self.metric is None:
            raise ValueError(
                f"gates.task bounds {names} but no task metric is set: add [validate.metric] "
                "(or --metric) naming the family that computes them"
            )
        if self.metric.kind in METRIC_NAMES:
            known = METRIC_NAMES[self.metric.kind]
            unknown = [n for n in names if n not in known]
            if unknown:
                raise ValueError(
                    f"gates.task names {unknown}, which the {self.metric.kind} metric does not "
                    f"compute (it computes {', '.join(known)})"
                )
        return self
