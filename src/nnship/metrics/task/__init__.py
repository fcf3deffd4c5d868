"""Task metrics: the number a model ships on (detection F1, decoded strings, map IoU, pooled
embedding cosine, signal agreement, classification agreement, or a user's function), computed
by nnship for the validator, the quantizer's decisions and the tuner alike.

- `TaskMetricConfig` (`[validate.metric]`), `parse_metric`, `TaskGate` / `parse_task_gates`;
  `METRIC_NAMES`, `PRIMARY` / `primary_metric`, `LABEL_METRICS`, `higher_is_better`
- `open_scorer(config, base_dir=None) -> TaskScorer` (`update(...)` per batch, `result()`)
- `MetricError` (exit 2: a metric that cannot be computed judges nothing)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nnship.core.lazy import lazy_exports

if TYPE_CHECKING:
    from pathlib import Path

    from nnship.metrics.task.base import TaskScorer
    from nnship.metrics.task.config import TaskMetricConfig

# The recipe imports `config` only; the scorers load on use.
__getattr__ = lazy_exports(
    __name__,
    {
        "LABEL_METRICS": "nnship.metrics.task.config",
        "METRIC_NAMES": "nnship.metrics.task.config",
        "PRIMARY": "nnship.metrics.task.config",
        "MetricError": "nnship.metrics.task.base",
        "TaskGate": "nnship.metrics.task.config",
        "TaskMetricConfig": "nnship.metrics.task.config",
        "TaskScorer": "nnship.metrics.task.base",
        "higher_is_better": "nnship.metrics.task.config",
        "parse_metric": "nnship.metrics.task.config",
        "parse_task_gates": "nnship.metrics.task.config",
        "primary_metric": "nnship.metrics.task.config",
    },
)

__all__ = [
    "LABEL_METRICS",
    "METRIC_NAMES",
    "PRIMARY",
    "MetricError",
    "TaskGate",
    "TaskMetricConfig",
    "TaskScorer",
    "higher_is_better",
    "open_scorer",
    "parse_metric",
    "parse_task_gates",
    "primary_metric",
]


def open_scorer(config: TaskMetricConfig, base_dir: Path | None = None) -> TaskScorer:
    """A fresh scorer for `config`; user functions (metric or detection decode) are imported
    here, relative paths against `base_dir`, so a bad one fails before any model runs."""
    from nnship.metrics.task import detection, families, sequences, user
    from nnship.metrics.task.config import (
        CallableMetric,
        ClassificationMetric,
        DetectionMetric,
        EmbeddingMetric,
        MapMetric,
        SequenceMetric,
        SignalMetric,
    )

    if isinstance(config, ClassificationMetric):
        return families.ClassificationScorer(config)
    if isinstance(config, MapMetric):
        return families.MapScorer(config)
    if isinstance(config, EmbeddingMetric):
        return families.EmbeddingScorer(config)
    if isinstance(config, SignalMetric):
        return families.SignalScorer(config)
    if isinstance(config, DetectionMetric):
        decode = user.load_function(config.decode, base_dir) if config.decode else None
        return detection.DetectionScorer(config, decode)
    if isinstance(config, SequenceMetric):
        return sequences.SequenceScorer(config, sequences.load_charset(config, base_dir))
    if isinstance(config, CallableMetric):
        return user.CallableScorer(config, user.load_function(config.function, base_dir))
    raise AssertionError(f"unknown metric config {type(config).__name__}")
