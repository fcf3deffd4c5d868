"""A user's own metric function, loaded like a model factory (`pkg.mod:fn`, `file.py:fn`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np

from nnship.core.importing import resolve_object
from nnship.metrics.task.base import MetricError, Outputs, TaskScorer, batch_size
from nnship.metrics.task.config import CallableMetric


def load_function(spec: str, base_dir: Path | None = None) -> Callable[..., Any]:
    fn, _ = resolve_object(spec, what="metric function", error=MetricError, base_dir=base_dir)
    if not callable(fn):
        raise MetricError(f"metric function '{spec}' is a {type(fn).__name__}, not a function")
    return fn


class CallableScorer(TaskScorer):
    """Calls `fn(reference, candidate, inputs, labels)` per batch; averages each returned value
    over batches, weighted by batch size."""

    kind = "callable"

    def __init__(self, config: CallableMetric, fn: Callable[..., Any]) -> None:
        super().__init__(config.output)
        self.config = config
        self.fn = fn
        self.sums: dict[str, float] = {}
        self.n = 0

    def update(
        self,
        reference: Outputs,
        candidate: Outputs,
        inputs: Mapping[str, np.ndarray],
        labels: np.ndarray | None = None,
    ) -> None:
        where = f"metric function '{self.config.function}'"
        try:
            values = self.fn(dict(reference), dict(candidate), dict(inputs), labels)
        except Exception as exc:
            raise MetricError(f"{where} raised {type(exc).__name__}: {exc}") from exc
        if not isinstance(values, Mapping) or not values:
            raise MetricError(
                f"{where} returned {type(values).__name__}; it must return a dict of named floats"
            )
        n = batch_size(reference)
        for name, value in values.items():
            if isinstance(value, np.ndarray) and value.size == 1:
                value = value.item()
            if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
                raise MetricError(f"{where} returned {name} = {value!r}, not a finite number")
            if self.n and name not in self.sums:
                raise MetricError(
                    f"{where} returned '{name}' for this batch but not for earlier ones"
                )
            self.sums[name] = self.sums.get(name, 0.0) + float(value) * n
        missing = set(self.sums) - set(values)
        if missing:
            raise MetricError(f"{where} did not return {sorted(missing)} for this batch")
        self.n += n

    def _result(self) -> dict[str, float]:
        if not self.n:
            raise MetricError(f"metric function '{self.config.function}': no samples were scored")
        return {name: total / self.n for name, total in self.sums.items()}
