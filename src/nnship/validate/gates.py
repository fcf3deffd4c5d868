"""Gate verdicts: each set gate checked against each candidate row (never the baseline).

A gate whose metric was not measured for a row (no classification output, latency off, no
size on disk, a task value the metric did not produce) fails with a detail saying so: a CI gate
that silently passes is worse than one that asks to be removed. A NaN metric (a candidate
produced NaN/Inf) fails every gate on it. Task gates (`[validate.gates] task`) give verdicts
named `task.<name>`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from nnship.metrics.task.config import TaskGate
from nnship.validate.config import Gates
from nnship.validate.report import TASK_SKIPPED, GateVerdict, Row

# gate name -> (is the threshold a maximum?, how to read the value and name its source)
_Reader = Callable[[Row, Gates], tuple[float | None, str]]


def _classification(field: str) -> _Reader:
    def read(row: Row, gates: Gates) -> tuple[float | None, str]:
        if row.classification is None:
            return None, "no classification output (2-D [N, C] logits) to score"
        return getattr(row.classification, field), f"output '{row.classification.output}'"

    return read


def _worst(metric: str, lowest: bool) -> _Reader:
    def read(row: Row, gates: Gates) -> tuple[float | None, str]:
        if not row.outputs:
            return None, "no outputs compared"
        broken = next((o for o in row.outputs if o.nonfinite_count), None)
        if broken is not None:
            return math.nan, f"output '{broken.name}' has {broken.nonfinite_count} NaN/Inf values"
        if metric == "sqnr_db" and all(o.sqnr_db is None for o in row.outputs):
            return math.inf, "outputs identical (infinite SQNR)"
        value, name = row.worst(metric, lowest=lowest)
        return value, f"worst output '{name}'"

    return read


def _latency(row: Row, gates: Gates) -> tuple[float | None, str]:
    stats = row.latency_at()
    if stats is None:
        return None, "latency not measured"
    return stats.percentile(gates.latency_percentile), (
        f"p{gates.latency_percentile} at batch {stats.batch_size}"
    )


def _size(row: Row, gates: Gates) -> tuple[float | None, str]:
    if row.size_bytes is None:
        return None, "size on disk unknown"
    return row.size_bytes / 1e6, "size on disk (MB)"


_GATES: dict[str, tuple[bool, _Reader]] = {
    "max_top1_drop": (True, _classification("top1_drop")),
    "min_top1_agreement": (False, _classification("top1_agreement")),
    "min_top5_agreement": (False, _classification("top5_agreement")),
    "min_cosine": (False, _worst("cosine_mean", lowest=True)),
    "min_sqnr_db": (False, _worst("sqnr_db", lowest=True)),
    "max_abs_error": (True, _worst("max_abs_error", lowest=False)),
    "max_latency_ms": (True, _latency),
    "max_size_mb": (True, _size),
}


def _task_verdict(gate: TaskGate, row: Row) -> GateVerdict:
    value = row.task_metrics.get(gate.metric)
    bound = f"{gate.op} {gate.threshold:g}"
    if value is None:
        if row.extra.get(TASK_SKIPPED):
            why = f"task metric not computed: {row.extra[TASK_SKIPPED]}"
        elif row.task_metrics:
            why = f"the task metric gave no '{gate.metric}' (it gave {', '.join(row.task_metrics)})"
        else:
            why = "no task metric values ([validate.metric] / --metric)"
        detail = f"not measured: {why}"
    else:
        detail = f"task metric, needs {bound}"
    return GateVerdict(
        gate=f"task.{gate.metric}",
        row=row.label,
        threshold=gate.threshold,
        value=value,
        passed=gate.holds(value),
        detail=detail,
    )


def check_gates(gates: Gates, rows: list[Row]) -> list[GateVerdict]:
    """One verdict per (set gate, candidate row), in gate then row order; the task gates
    (`gates.task_gates()`, verdicts `task.<name>`) last."""
    verdicts = []
    for gate, threshold in gates.active().items():
        is_max, read = _GATES[gate]
        for row in rows:
            value, detail = read(row, gates)
            if value is None:
                verdicts.append(
                    GateVerdict(
                        gate=gate,
                        row=row.label,
                        threshold=threshold,
                        value=None,
                        passed=False,
                        detail=f"not measured: {detail}",
                    )
                )
                continue
            ok = value <= threshold if is_max else value >= threshold  # NaN compares False
            verdicts.append(
                GateVerdict(
                    gate=gate,
                    row=row.label,
                    threshold=threshold,
                    value=value if math.isfinite(value) else None,
                    passed=bool(ok),
                    detail=detail if math.isfinite(value) or ok else f"{detail} (non-finite)",
                )
            )
    for task_gate in gates.task_gates():
        verdicts += [_task_verdict(task_gate, row) for row in rows]
    return verdicts
