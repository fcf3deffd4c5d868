"""The interface every task metric implements: fed batch by batch, read once at the end.

A scorer compares a candidate's outputs with the float baseline's on the same inputs; the
validator, the quantizer's decisions and the tuner all feed it the same way, so a model is
judged by one number everywhere.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping

import numpy as np

from nnship.core.errors import NnshipError


class MetricError(NnshipError):
    """A task metric cannot be computed: its configuration does not fit the model's outputs,
    or a user metric function raised or returned something that is not a finite number.
    Exit code 2 (nothing is judged on a metric that failed)."""


Outputs = Mapping[str, np.ndarray]


class TaskScorer(abc.ABC):
    """`update(reference, candidate, inputs, labels)` per batch, then `result()`.

    `reference` and `candidate` map output names to arrays (first axis the batch); `inputs` is
    the batch fed to both; `labels` the data's labels or None. `result()` returns finite floats
    by metric name (a family leaves out what its data cannot give)."""

    kind: str = "task"

    def __init__(self, output: str | None = None) -> None:
        self.output = output

    def pick(self, outputs: Outputs, name: str | None = None) -> np.ndarray:
        """The output `name` (default: this metric's `output`, else the first output)."""
        wanted = name or self.output
        if wanted is None:
            return np.asarray(next(iter(outputs.values())))
        if wanted not in outputs:
            raise MetricError(
                f"{self.kind} metric: the model has no output '{wanted}' "
                f"(its outputs: {', '.join(outputs)})"
            )
        return np.asarray(outputs[wanted])

    @abc.abstractmethod
    def update(
        self,
        reference: Outputs,
        candidate: Outputs,
        inputs: Mapping[str, np.ndarray],
        labels: np.ndarray | None = None,
    ) -> None:
        """Add one batch."""

    @abc.abstractmethod
    def _result(self) -> dict[str, float]:
        """The metrics over every batch seen."""

    def result(self) -> dict[str, float]:
        """The metrics over every batch seen, each a finite float (`MetricError` otherwise)."""
        values = self._result()
        for name, value in values.items():
            if not isinstance(value, float) or not math.isfinite(value):
                raise MetricError(f"{self.kind} metric '{name}' is {value!r}, not a finite number")
        return values


def batch_size(outputs: Outputs) -> int:
    return len(next(iter(outputs.values())))


def safe_ratio(num: float, den: float, empty: float = 1.0) -> float:
    """`num / den`, or `empty` when nothing was counted (two empty results agree fully)."""
    return float(num / den) if den else float(empty)
