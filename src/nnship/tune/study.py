"""The Optuna study of a tune run: sampler, constraints, and who may join it.

- Samplers: `TPESampler(seed, constraints_func)` (Bayesian), `RandomSampler(seed)`,
  `GridSampler(search_space, seed)`, `NSGAIISampler(seed, constraints_func)`. With more than
  one objective the study is multi-objective (all minimised).
- Accuracy budgets are hard constraints: each trial stores its misses (one value per
  constraint, <= 0 when met) in the user attribute `constraints`, which `constraints_func`
  returns to the sampler (Optuna's constrained optimisation).
- The study's user attributes hold the hashes of the recipe and of the space: a worker (or a
  `--resume`) with another recipe or space is refused, naming what differs.
- Interrupted trials: a trial still RUNNING whose worker process is gone (same host, dead
  pid) is failed and re-queued with its parameters (Optuna's
  `RetryHeartbeatStaleTrialCallback`); on server storages the heartbeat does the same for
  workers on other hosts.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from nnship.core.errors import RecipeError
from nnship.tune.space import TuneSpace
from nnship.tune.trial import worker_gone, worker_name

log = logging.getLogger(__name__)

__all__ = [
    "StudyMismatch",
    "constraint_values",
    "make_sampler",
    "open_study",
    "recover_interrupted",
]

RECIPE_ATTR = "nnship_recipe_hash"
SPACE_ATTR = "nnship_space_hash"
RECIPE_DATA_ATTR = "nnship_recipe"
SPACE_DATA_ATTR = "nnship_space"
WORKER_ATTR = "worker"
CONSTRAINTS_ATTR = "constraints"


class StudyMismatch(RecipeError):
    """The study was started with another recipe or space (exit 2)."""


def constraint_values(trial: Any) -> list[float]:
    """Optuna's `constraints_func`: the trial's misses (<= 0 feasible). A trial without them
    (failed, pruned) counts as infeasible."""
    return list(trial.user_attrs.get(CONSTRAINTS_ATTR, [1.0]))


def make_sampler(space: TuneSpace, seed: int) -> Any:
    """The Optuna sampler `space.config.sampler` names, seeded."""
    import optuna

    name = space.config.sampler
    constrained = bool(space.config.constraints)
    func = constraint_values if constrained else None
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, constraints_func=func)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        return _ask_tell_grid_sampler()(space.grid(), seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, constraints_func=func)
    raise AssertionError(name)  # TuneConfig allows only the four


def _ask_tell_grid_sampler() -> type:
    """Optuna's GridSampler without its `study.stop()` after the last point: that call only
    works inside `study.optimize`; the tune loop checks `is_exhausted` itself."""
    import optuna

    class AskTellGridSampler(optuna.samplers.GridSampler):
        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            return None

    return AskTellGridSampler


def _diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Human-readable differences between two JSON-able values."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            where = f"{prefix}.{key}" if prefix else str(key)
            if key not in old:
                out.append(f"{where}: added ({json.dumps(new[key])})")
            elif key not in new:
                out.append(f"{where}: removed (was {json.dumps(old[key])})")
            else:
                out.extend(_diff(old[key], new[key], where))
        return out
    if old != new:
        return [f"{prefix}: {json.dumps(old)} -> {json.dumps(new)}"]
    return []


def open_study(
    storage: Any,
    name: str,
    space: TuneSpace,
    *,
    recipe_hash: str,
    recipe_data: dict[str, Any],
    space_hash: str,
    seed: int,
    resume: bool,
    force: bool,
    shared: bool,
) -> Any:
    """Create or join the study `name`.

    A study that exists is joined when `resume` (a killed run continues) or `shared` (a
    server storage: workers join one study), else it is an error unless `force` (a new study
    replaces it). Joining checks the recipe and space hashes: different ones are refused,
    listing the differences, unless `force` (the old study is deleted).
    """
    import optuna

    directions = ["minimize"] * len(space.config.objectives)
    existing = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    if name in existing:
        study = optuna.load_study(study_name=name, storage=storage)
        attrs = study.user_attrs
        same = attrs.get(RECIPE_ATTR) == recipe_hash and attrs.get(SPACE_ATTR) == space_hash
        if force:
            optuna.delete_study(study_name=name, storage=storage)
        elif not same:
            diffs = _diff(attrs.get(SPACE_DATA_ATTR, {}), space.config.model_dump(mode="json"))
            diffs = [f"[tune] {d}" for d in diffs]
            diffs += _diff(attrs.get(RECIPE_DATA_ATTR, {}), recipe_data)
            shown = "; ".join(diffs[:8]) + (
                f"; ... ({len(diffs) - 8} more)" if len(diffs) > 8 else ""
            )
            raise StudyMismatch(
                f"study '{name}' was started with another recipe or search space ({shown or 'hashes differ'}); "
                "use the same recipe, or --force to start a new study"
            )
        elif not (resume or shared):
            raise RecipeError(
                f"study '{name}' already has {len(study.trials)} trial(s): --resume to continue "
                "it, or --force to start over"
            )
        else:
            _check_directions(study, directions, name)
            study.sampler = make_sampler(space, seed)
            return study
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=make_sampler(space, seed),
        directions=directions,
        load_if_exists=shared,
    )
    if study.user_attrs.get(RECIPE_ATTR) is None:
        study.set_user_attr(RECIPE_ATTR, recipe_hash)
        study.set_user_attr(SPACE_ATTR, space_hash)
        study.set_user_attr(RECIPE_DATA_ATTR, recipe_data)
        study.set_user_attr(SPACE_DATA_ATTR, space.config.model_dump(mode="json"))
    elif (
        study.user_attrs.get(RECIPE_ATTR) != recipe_hash
        or study.user_attrs.get(SPACE_ATTR) != space_hash
    ):
        raise StudyMismatch(
            f"study '{name}' was started by another worker with another recipe or search space; "
            "every worker of one study must run the same recipe"
        )
    return study


def _check_directions(study: Any, directions: list[str], name: str) -> None:
    have = [d.name.lower() for d in study.directions]
    if have != directions:
        raise StudyMismatch(
            f"study '{name}' has {len(have)} objective(s), this run {len(directions)}"
        )


def recover_interrupted(study: Any) -> list[Any]:
    """Fail the RUNNING trials whose worker on this host is gone (or is this process: a run
    that stopped mid-trial) and re-queue each with its parameters; returns the failed trials
    (frozen). Another worker of this host recovering the same trial at the same moment is
    fine: Optuna lets one `tell` finish the trial, the other is refused and skips it."""
    import optuna
    from optuna.trial import TrialState

    me = worker_name()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = str(trial.user_attrs.get(WORKER_ATTR, ""))
        if not (worker == me or worker_gone(worker)):
            continue
        try:
            frozen = study.tell(trial.number, state=TrialState.FAIL)
        except (ValueError, optuna.exceptions.UpdateFinishedTrialError):
            continue  # finished meanwhile ("Cannot tell a FAIL trial")
        optuna.storages.RetryHeartbeatStaleTrialCallback()(study, frozen)
        failed.append(frozen)
        log.warning("trial %d was interrupted (worker %s gone): re-queued", trial.number, worker)
    return failed
