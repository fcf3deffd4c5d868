"""Pareto fronts over the artifacts of every finished trial, and `pareto.json` / `pareto.md`.

A front is computed per (backend, precision, fingerprint): artifacts of different machines
are never ranked together, and an INT8 OpenVINO model competes with other INT8 OpenVINO
models. A point is on the front when it meets every constraint and no other feasible point
is at least as good on every objective and better on one (minimisation; Deb et al. 2002,
"A fast and elitist multiobjective genetic algorithm: NSGA-II", the dominance relation).

When no trial meets the constraints, `relaxed` keeps the run useful: the trial closest to
the budget (least summed relative violation), by how much it missed each constraint, and the
fronts with the constraints dropped.

Re-timing: trial latencies were measured minutes apart on a machine whose latency drifts, so
at the end the front candidates of each backend are timed again side by side in one
interleaved pass (every candidate gets a turn per round, warm-up before each turn) and the
final front is ranked on those numbers; both are kept.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nnship.core.fileio import write_json_atomic, write_text_atomic
from nnship.tune.records import (
    PARETO_NAME,
    ArtifactMetrics,
    Fingerprint,
    FrontPoint,
    ParetoFile,
    ParetoGroup,
    RelaxedResult,
    TrialRecord,
)
from nnship.validate.render.cells import fmt_value

log = logging.getLogger(__name__)

__all__ = ["compute_pareto", "dominates", "retime_fronts", "write_pareto"]

RETIME_ROUNDS = 3
"""Turns each candidate gets in the interleaved re-timing pass."""


def _objective(point: FrontPoint, name: str) -> float:
    if name == "latency":
        value = (
            point.retimed_latency_ms if point.retimed_latency_ms is not None else point.latency_ms
        )
    else:
        value = point.size_bytes
    return float("inf") if value is None else float(value)


def dominates(a: FrontPoint, b: FrontPoint, objectives: list[str]) -> bool:
    """a is no worse than b on every objective and better on one."""
    va = [_objective(a, o) for o in objectives]
    vb = [_objective(b, o) for o in objectives]
    return all(x <= y for x, y in zip(va, vb, strict=True)) and va != vb


def non_dominated(points: list[FrontPoint], objectives: list[str]) -> list[FrontPoint]:
    """The points no other point dominates; among equal points the earliest trial, sorted by
    the objectives."""
    front: list[FrontPoint] = []
    for p in sorted(points, key=lambda p: (*[_objective(p, o) for o in objectives], p.trial)):
        if any(dominates(q, p, objectives) for q in points):
            continue
        if any(
            [_objective(q, o) for o in objectives] == [_objective(p, o) for o in objectives]
            for q in front
        ):
            continue
        front.append(p)
    return front


def _point(record: TrialRecord, artifact: ArtifactMetrics, relaxed: bool) -> FrontPoint:
    return FrontPoint(
        trial=record.number,
        latency_ms=artifact.latency_ms_p50,
        size_bytes=artifact.size_bytes,
        metrics=artifact.metrics,
        path=artifact.path,
        sha256=artifact.sha256,
        params=record.params,
        missed=artifact.missed if relaxed else {},
    )


def _groups(
    records: Iterable[TrialRecord], objectives: list[str], *, relaxed: bool
) -> list[ParetoGroup]:
    buckets: dict[tuple[str, str, str], list[FrontPoint]] = defaultdict(list)
    for record in records:
        if record.state not in ("complete", "infeasible"):
            continue
        fp = record.fingerprint.id if record.fingerprint else "unknown"
        for artifact in record.artifacts:
            if relaxed or artifact.feasible:
                buckets[(artifact.backend, artifact.precision, fp)].append(
                    _point(record, artifact, relaxed)
                )
    return [
        ParetoGroup(
            backend=b,
            precision=p,
            fingerprint=f,
            front=non_dominated(_merge_same(points), objectives),
        )
        for (b, p, f), points in sorted(buckets.items())
    ]


def _merge_same(points: list[FrontPoint]) -> list[FrontPoint]:
    """One point per artifact: trials whose artifacts have the same SHA-256 (the fp32 model
    of trials that differ only in quantization) built the same file; it is kept once, under
    its first trial, with the median of the latencies the trials measured (less noisy)."""
    import statistics

    by_hash: dict[str, list[FrontPoint]] = defaultdict(list)
    merged = []
    for p in points:
        if p.sha256:
            by_hash[p.sha256].append(p)
        else:
            merged.append(p)
    for same in by_hash.values():
        first = min(same, key=lambda p: p.trial)
        latencies = [p.latency_ms for p in same if p.latency_ms is not None]
        if latencies:
            first = first.model_copy(update={"latency_ms": statistics.median(latencies)})
        merged.append(first)
    return merged


def compute_pareto(
    records: list[TrialRecord], objectives: list[str], constraints: dict[str, float]
) -> ParetoFile:
    """The fronts of `records`; `relaxed` filled when no artifact of any trial is feasible."""
    fingerprints: dict[str, Fingerprint] = {}
    states: dict[str, int] = defaultdict(int)
    for record in records:
        states[record.state] += 1
        if record.fingerprint is not None:
            fingerprints[record.fingerprint.id] = record.fingerprint
    groups = _groups(records, objectives, relaxed=False)
    relaxed = None
    built = [r for r in records if r.state in ("complete", "infeasible") and r.artifacts]
    if not groups and built:
        closest = min(built, key=lambda r: (r.violation, r.number))
        best = min(closest.artifacts, key=lambda a: a.violation)
        relaxed = RelaxedResult(
            closest_trial=closest.number,
            missed_by=dict(best.missed),
            groups=_groups(records, objectives, relaxed=True),
        )
    return ParetoFile(
        objectives=list(objectives),
        constraints=dict(constraints),
        groups=groups,
        relaxed=relaxed,
        fingerprints=fingerprints,
        trials=dict(states),
    )


def retime_fronts(
    pareto: ParetoFile, fingerprint_id: str, backends_config: Any, latency_config: Any, data: Any
) -> ParetoFile:
    """Re-time the front points measured on this machine (`fingerprint_id`), per backend, in
    one interleaved pass, and rank each group's front on the new numbers (points that become
    dominated drop off). Returns a new `ParetoFile` with `retimed_latency_ms` set."""
    from nnship.backends.compile import open_artifact
    from nnship.metrics.latency import latency_batch, latency_stats, measure_latency

    pareto = pareto.model_copy(deep=True)
    mine = [g for g in pareto.groups if g.fingerprint == fingerprint_id]
    by_backend: dict[str, list[FrontPoint]] = defaultdict(list)
    for group in mine:
        by_backend[group.backend].extend(group.front)
    turn = latency_config.model_copy(
        update={"runs": max(latency_config.runs // RETIME_ROUNDS, latency_config.min_runs)}
    )
    batch = latency_batch(data, latency_config.batch_sizes[0])
    for backend, points in by_backend.items():
        runners = {}
        try:
            for p in points:
                if p.path and Path(p.path).exists():
                    runners[id(p)] = open_artifact(p.path, backend=backend, config=backends_config)
            samples: dict[int, list[float]] = defaultdict(list)
            for _ in range(RETIME_ROUNDS):
                for p in points:
                    runner = runners.get(id(p))
                    if runner is not None:  # measure_latency warms up before each turn
                        stats = measure_latency(runner, batch, turn)
                        samples[id(p)].extend(stats.samples_ms)
            for p in points:
                if samples.get(id(p)):
                    import numpy as np

                    ns = np.asarray(samples[id(p)]) * 1e6
                    p.retimed_latency_ms = latency_stats(ns, 1).p50_ms
        finally:
            for runner in runners.values():
                runner.close()
    for group in mine:
        group.front = non_dominated(group.front, pareto.objectives)
    pareto.retimed = bool(mine)
    return pareto


def pareto_markdown(pareto: ParetoFile) -> str:
    """`pareto.md`: one table per (backend, precision, fingerprint)."""
    lines = ["# Tune: Pareto fronts", ""]
    if pareto.constraints:
        budget = ", ".join(f"{k} = {v:g}" for k, v in pareto.constraints.items())
        lines += [f"Constraints: {budget}. Objectives: {', '.join(pareto.objectives)}.", ""]
    if len(pareto.fingerprints) > 1:
        lines += [
            f"Trials ran on {len(pareto.fingerprints)} different machines (fingerprints): "
            "their latencies are grouped, never ranked together.",
            "",
        ]
    groups = pareto.groups
    if not groups and pareto.relaxed is not None:
        r = pareto.relaxed
        missed = ", ".join(f"{k} by {v:g}" for k, v in r.missed_by.items())
        lines += [
            f"**No trial met the constraints.** Closest: trial {r.closest_trial} ({missed}).",
            "Fronts below drop the constraints (relaxed budget).",
            "",
        ]
        groups = r.groups
    for g in groups:
        lines += [
            f"## {g.backend}/{g.precision} (machine {g.fingerprint})",
            "",
            "| trial | p50 ms (trial) | p50 ms (re-timed) | size bytes | top-1 drop | cosine | path |",
            "|---:|---:|---:|---:|---:|---:|---|",
        ]
        for p in g.front:
            lines.append(
                f"| {p.trial} | {fmt_value(p.latency_ms)} | {fmt_value(p.retimed_latency_ms)} | "
                f"{fmt_value(p.size_bytes)} | {fmt_value(p.metrics.get('top1_drop'), 2)} | "
                f"{fmt_value(p.metrics.get('cosine'), 5)} | `{p.path}` |"
            )
        lines.append("")
    if not groups:
        lines.append("No finished trial yet.")
    return "\n".join(lines).rstrip() + "\n"


def write_pareto(tune_dir: Path, pareto: ParetoFile) -> Path:
    """Write `pareto.json` (the source of truth) and `pareto.md` beside it, atomically."""
    path = Path(tune_dir) / PARETO_NAME
    write_json_atomic(path, pareto.model_dump(mode="json"))
    write_text_atomic(path.with_suffix(".md"), pareto_markdown(pareto))
    return path
