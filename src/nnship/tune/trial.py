"""One trial: the sampled parameters applied to the recipe, one `nnship build`, and its
artifacts scored against the tune constraints.

Each artifact of the build (every backend x precision, fp32 included) is one
`ArtifactMetrics` row: feasible when it meets every constraint, else how far it misses each.
The trial's objectives are those of its best feasible artifact (the first objective decides,
the next ones break ties); with none feasible, those of the least-violating one, and the
trial is infeasible (Optuna's constraint values are that artifact's misses).
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nnship.core.errors import RecipeError
from nnship.tune.records import ArtifactMetrics, Fingerprint, TrialRecord
from nnship.tune.space import TuneSpace, _to_optuna, from_optuna

log = logging.getLogger(__name__)

__all__ = [
    "HopelessTrial",
    "artifact_metrics",
    "distill_early_stop",
    "score_trial",
    "trial_recipe",
    "worker_gone",
    "worker_name",
]

NOT_MEASURED_VIOLATION = 1e6
"""The miss recorded for a constraint whose metric an artifact does not have."""


class HopelessTrial(Exception):
    """Raised from the distillation's epoch callback: this trial cannot meet its budget."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def worker_name() -> str:
    """`hostname-pid` of this process."""
    return f"{socket.gethostname()}-{os.getpid()}"


def worker_gone(worker: str) -> bool:
    """Whether `worker` (a `worker_name()`) ran on this host and its process is gone (on
    another host, nothing can tell: False)."""
    host, _, pid = worker.rpartition("-")
    return host == socket.gethostname() and pid.isdigit() and not _pid_alive(int(pid))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def trial_recipe(recipe: Any, space: TuneSpace, params: dict[str, Any]) -> Any:
    """The recipe a trial builds: `recipe` without `[tune]` and `[bundle]`, sections whose
    condition fails removed, the parameters applied as overrides, and the constraints as
    `[validate.gates]` (so the trial's report, and a promoted recipe, gate on the same budget)."""
    from nnship.recipe import apply_overrides

    base = _flat_values(recipe.model_dump(mode="json", by_alias=True))
    removed = space.active_sections_removed(params, base)
    overrides = {k: v for k, v in params.items() if k.split(".")[0] not in removed} | {
        f"validate.gates.{k}": v for k, v in space.config.constraints.items()
    }
    # a trial is not a deployment: every trial would write the same `[bundle] output` folder
    return apply_overrides(recipe, overrides, without=("tune", "bundle", *removed))


def _flat_values(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat_values(value, f"{prefix}{key}."))
        out[f"{prefix}{key}"] = value
    return out


def sample_params(trial: Any, space: TuneSpace, recipe: Any) -> dict[str, Any]:
    """Ask Optuna's `trial` for each active parameter, in declaration order; a parameter whose
    condition fails on the values so far is not sampled (the recipe keeps its value)."""
    base = _flat_values(recipe.model_dump(mode="json", by_alias=True))
    params: dict[str, Any] = {}
    for param in space.parameters:
        if param.condition is not None and not param.condition.holds({**base, **params}):
            continue
        params[param.key] = from_optuna(param, _suggest(trial, param))
    return params


def _suggest(trial: Any, param: Any) -> Any:
    if param.kind == "categorical":
        return trial.suggest_categorical(param.key, [_to_optuna(c) for c in param.choices])
    if param.kind == "int":
        step = int(param.step or 1)
        return trial.suggest_int(
            param.key, int(param.low), int(param.high), step=step, log=param.log
        )
    return trial.suggest_float(
        param.key, float(param.low), float(param.high), step=param.step, log=param.log
    )


def distill_early_stop(space: TuneSpace) -> Any:
    """The per-epoch callback that stops a hopeless distillation, or None when no constraint
    is on accuracy.

    Optuna's pruners (`trial.report` / `should_prune`) do not work for multi-objective studies,
    so this rule is written by hand on the constraint: after epoch `patience`, when the best
    validation figure so far misses the budget by more than `margin` percentage points
    (`max_top1_drop`: teacher accuracy minus student accuracy on the distillation's validation
    split, or 100 minus top-1 agreement without labels; `min_top1_agreement`: agreement with
    the teacher), the run stops: quantization only adds error, so a float student that far off
    will not meet the budget. The margin covers the split differing from the evaluation data.
    """
    constraints = space.config.constraints
    patience, margin = space.config.patience, space.config.margin
    max_drop = constraints.get("max_top1_drop")
    min_agree = constraints.get("min_top1_agreement")
    if max_drop is None and min_agree is None:
        return None
    best: dict[str, float] = {}

    def on_epoch(stats: Any, result: Any) -> None:
        if stats.val_agreement is not None:
            best["agree"] = max(best.get("agree", 0.0), 100.0 * stats.val_agreement)
        if stats.val_accuracy is not None and result.teacher_accuracy is not None:
            drop = 100.0 * (result.teacher_accuracy - stats.val_accuracy)
            best["drop"] = min(best.get("drop", math.inf), drop)
        elif "agree" in best:
            best["drop"] = 100.0 - best["agree"]
        if stats.epoch < patience:
            return
        if max_drop is not None and best.get("drop", -math.inf) > max_drop + margin:
            raise HopelessTrial(
                f"distillation stopped after epoch {stats.epoch}: best top-1 drop "
                f"{best['drop']:.2f} points > budget {max_drop:g} + margin {margin:g}"
            )
        if min_agree is not None and best.get("agree", math.inf) < min_agree - margin:
            raise HopelessTrial(
                f"distillation stopped after epoch {stats.epoch}: best top-1 agreement "
                f"{best['agree']:.2f}% < budget {min_agree:g} - margin {margin:g}"
            )

    return on_epoch


def _row_metrics(row: Any) -> dict[str, float | None]:
    cls = row.classification
    metrics: dict[str, float | None] = {}
    if cls is not None:
        for key in ("top1_drop", "top1_agreement", "top5_agreement", "accuracy"):
            metrics[key] = getattr(cls, key)
    metrics["cosine"] = row.worst("cosine_mean", lowest=True)[0]
    metrics["sqnr_db"] = row.worst("sqnr_db", lowest=True)[0]
    metrics["max_abs_error"] = row.worst("max_abs_error", lowest=False)[0]
    return {k: (v if v is None or math.isfinite(v) else None) for k, v in metrics.items()}


def artifact_metrics(report: Any, constraints: dict[str, float]) -> list[ArtifactMetrics]:
    """One `ArtifactMetrics` per candidate row of a build's report, scored on `constraints`
    (validate gates; the miss of each failed one in its own unit, `violation` their sum
    relative to each threshold)."""
    from nnship.validate.config import Gates
    from nnship.validate.gates import check_gates

    gates = Gates(**constraints)
    rows = []
    for row in report.rows:
        missed: dict[str, float] = {}
        violation = 0.0
        for verdict in check_gates(gates, [row]):
            if verdict.passed:
                continue
            if verdict.value is None:
                miss = NOT_MEASURED_VIOLATION
            else:
                miss = abs(verdict.value - verdict.threshold)
            missed[verdict.gate] = miss
            violation += miss / (abs(verdict.threshold) or 1.0)
        stats = row.latency_at()
        rows.append(
            ArtifactMetrics(
                backend=row.backend,
                precision=row.precision,
                path=row.path or "",
                sha256=row.sha256,
                size_bytes=row.size_bytes,
                latency_ms_p50=stats.p50_ms if stats else None,
                latency_ms_p90=stats.p90_ms if stats else None,
                metrics=_row_metrics(row),
                feasible=not missed,
                violation=violation,
                missed=missed,
            )
        )
    return rows


def objective_values(artifact: ArtifactMetrics, objectives: list[str]) -> list[float]:
    out = []
    for name in objectives:
        value = artifact.latency_ms_p50 if name == "latency" else artifact.size_bytes
        out.append(float(value) if value is not None else math.inf)
    return out


def best_artifact(
    artifacts: list[ArtifactMetrics], objectives: list[str]
) -> ArtifactMetrics | None:
    """The feasible artifact best on the objectives in order, else the least-violating one."""
    if not artifacts:
        return None
    feasible = [a for a in artifacts if a.feasible]
    if feasible:
        return min(feasible, key=lambda a: objective_values(a, objectives))
    return min(artifacts, key=lambda a: (a.violation, objective_values(a, objectives)))


def score_trial(
    number: int,
    params: dict[str, Any],
    recipe: Any,
    result: Any,
    space: TuneSpace,
    *,
    fingerprint: Fingerprint,
    started: float,
    worker: str,
) -> TrialRecord:
    """The `TrialRecord` of a finished build."""
    artifacts = artifact_metrics(result.report, space.config.constraints)
    best = best_artifact(artifacts, space.config.objectives)
    feasible = best is not None and best.feasible
    objectives: dict[str, float | int | None] = {"latency_ms": None, "size_bytes": None}
    if best is not None:
        objectives = {"latency_ms": best.latency_ms_p50, "size_bytes": best.size_bytes}
    reason = None
    if not feasible and best is not None:
        misses = ", ".join(f"{k} by {v:g}" for k, v in best.missed.items())
        reason = f"no artifact meets the constraints; closest {best.label} misses {misses}"
    return TrialRecord(
        number=number,
        state="complete" if feasible else "infeasible",
        params=params,
        recipe=recipe_data(recipe),
        artifacts=artifacts,
        objectives=objectives,
        feasible=feasible,
        violation=best.violation if best is not None else NOT_MEASURED_VIOLATION,
        reason=reason,
        stages=dict(result.stages),
        fingerprint=fingerprint,
        worker=worker,
        started=datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="seconds"),
        finished=now_iso(),
        duration_s=round(time.time() - started, 3),
        build_dir=str(result.output_dir),
    )


def recipe_data(recipe: Any) -> dict[str, Any]:
    """The trial's recipe as data: the keys the recipe and the parameters set, paths resolved
    (defaults left out on purpose: some settings, such as `[quantize] profile`, mean something
    different when given than when defaulted, so this reproduces the build exactly)."""
    data = recipe.model_dump(mode="json", by_alias=True, exclude_unset=True)
    data.pop("tune", None)
    data.pop("output_dir", None)
    return data


def check_objectives_measurable(recipe: Any, space: TuneSpace) -> None:
    """Refuse before any trial what no trial could measure."""
    name = str(recipe.path) if recipe.path else "recipe"
    if "latency" in space.config.objectives and not recipe.validation.latency.enabled:
        raise RecipeError(
            f"{name}: [tune] objectives has 'latency' but [validate.latency] enabled = false; "
            'enable latency or use objectives = ["size"]'
        )


def failed_record(
    number: int,
    params: dict[str, Any],
    recipe: Any,
    *,
    state: str,
    reason: str,
    fingerprint: Fingerprint,
    started: float,
    worker: str,
    build_dir: Path,
) -> TrialRecord:
    return TrialRecord(
        number=number,
        state=state,  # type: ignore[arg-type]
        params=params,
        recipe=recipe_data(recipe) if recipe is not None else {},
        objectives={"latency_ms": None, "size_bytes": None},
        feasible=False,
        violation=NOT_MEASURED_VIOLATION,
        reason=reason,
        fingerprint=fingerprint,
        worker=worker,
        started=datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="seconds"),
        finished=now_iso(),
        duration_s=round(time.time() - started, 3),
        build_dir=str(build_dir),
    )
