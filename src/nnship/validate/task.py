"""The task metric inside `validate`: one scorer per candidate, fed batch by batch with the
baseline's outputs, the candidate's (under the baseline's output names), the inputs and the
labels; checked on the first batch before anything is judged.

A metric that cannot be computed (a configuration that does not fit the outputs, a user
function that raises or returns NaN) is a `MetricError` (exit 2), raised by `check` on the
baseline against itself before any latency is measured or any candidate runs. A candidate that
produces NaN/Inf where the baseline is finite gets no task values (its task gates fail, saying
why), because its drift already marks it broken and a metric of garbage is not a number to rank.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nnship.metrics.task import open_scorer
from nnship.metrics.task.base import MetricError, Outputs, TaskScorer
from nnship.metrics.task.config import LABEL_METRICS, TaskMetricConfig
from nnship.validate.report import TASK_EXAMPLES, TASK_SKIPPED, Row


def _nonfinite(reference: Outputs, candidate: Outputs) -> str | None:
    """The first output where the candidate is NaN/Inf and the baseline is not, else None."""
    for name, out in candidate.items():
        cand = np.asarray(out)
        if not np.issubdtype(cand.dtype, np.floating):
            continue
        bad = ~np.isfinite(cand)
        if not bad.any():
            continue
        ref = np.asarray(reference.get(name, cand))
        if ref.shape != cand.shape or (bad & np.isfinite(ref)).any():
            return f"output '{name}' has {int(bad.sum())} NaN/Inf values"
    return None


class TaskScoring:
    """The task metric of one validation: `check` on the first batch, `update` per batch and
    candidate, then `fill` the rows."""

    def __init__(
        self, config: TaskMetricConfig, labels: list[str], base_dir: Path | None = None
    ) -> None:
        self.config = config
        self.base_dir = base_dir
        self.scorers: dict[str, TaskScorer] = {label: self._open() for label in labels}
        self.skipped: dict[str, str] = {}
        self.baseline: TaskScorer | None = None
        """Scores the baseline against itself for the values read against labels."""
        self.names: list[str] = []
        """The values the metric gave on the first batch, in its order."""

    def _open(self) -> TaskScorer:
        return open_scorer(self.config, self.base_dir)

    def check(
        self, reference: Outputs, inputs: Mapping[str, np.ndarray], labels: np.ndarray | None
    ) -> None:
        """Score the baseline's first batch against itself; `MetricError` naming the metric if
        it cannot be computed. Opens the baseline's own scorer when the family reads labels."""
        probe = self._open()
        try:
            probe.update(reference, reference, inputs, labels)
            values = probe.result()
        except MetricError as exc:
            raise MetricError(
                f"The task metric cannot be computed, so nothing was judged: {exc}"
            ) from exc
        self.names = list(values)
        label_metrics = LABEL_METRICS.get(self.config.kind, ())
        if labels is not None and any(name in values for name in label_metrics):
            self.baseline = self._open()

    def update_baseline(
        self, reference: Outputs, inputs: Mapping[str, np.ndarray], labels: np.ndarray | None
    ) -> None:
        if self.baseline is not None:
            self.baseline.update(reference, reference, inputs, labels)

    def update(
        self,
        label: str,
        reference: Outputs,
        candidate: Outputs,
        inputs: Mapping[str, np.ndarray],
        labels: np.ndarray | None,
    ) -> None:
        """Add one batch of candidate `label` (`candidate` keyed by the baseline's names)."""
        if label in self.skipped:
            return
        broken = _nonfinite(reference, candidate)
        if broken is not None:
            self.skipped[label] = broken
            return
        try:
            self.scorers[label].update(reference, candidate, inputs, labels)
        except MetricError as exc:
            raise MetricError(f"The task metric failed on '{label}': {exc}") from exc

    def fill(self, baseline: Row, rows: Mapping[str, Row]) -> None:
        """Write each candidate's values (and the baseline's label-based ones) into the rows."""
        if self.baseline is not None:
            own = self.baseline.result()
            label_metrics = LABEL_METRICS.get(self.config.kind, ())
            baseline.task_metrics = {k: v for k, v in own.items() if k in label_metrics}
        for label, row in rows.items():
            if label in self.skipped:
                why = self.skipped[label]
                row.extra[TASK_SKIPPED] = why
                row.notes.append(f"task metric not computed: {why}")
                continue
            scorer = self.scorers[label]
            try:
                row.task_metrics = scorer.result()
            except MetricError as exc:
                raise MetricError(f"The task metric failed on '{label}': {exc}") from exc
            examples = _examples(scorer)
            if examples:
                row.extra[TASK_EXAMPLES] = examples

    def describe(self) -> dict[str, Any]:
        """`Report.task_metric`: the configuration as given (defaults filled in)."""
        return self.config.model_dump(mode="json")


def _examples(scorer: TaskScorer) -> list[dict[str, str]]:
    found = getattr(scorer, "examples", None) or []
    return [{"baseline": ref, "candidate": cand} for ref, cand in found]
