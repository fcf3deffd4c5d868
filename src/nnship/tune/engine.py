"""The tune loop: ask Optuna for a point, build it, tell Optuna what it measured.

Ask-and-tell keeps the loop here: each trial is one `nnship.pipeline.build` of the recipe with
the sampled parameters applied, into `<tune>/trials/<number>/`, sharing one stage cache
(`<tune>/cache/` or `--cache`), so trials that agree on a prefix of settings (same pruning,
same float model, same calibration statistics) compute it once. The float baseline's
evaluation outputs are cached too (`build(baseline_cache=True)`).

Nothing is lost: every finished trial is appended to `trials.jsonl` before Optuna is told,
so a run killed at any point resumes (`--resume`) with its interrupted trial rerun and no
finished one recomputed (a trial found in `trials.jsonl` but still RUNNING in the storage is
told from its record). When the run ends (trials or wall time spent), the fronts are
computed, re-timed side by side on this machine, and written to `pareto.json` / `pareto.md`.
"""

from __future__ import annotations

import gc
import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnship.core.errors import NnshipError, RecipeError
from nnship.core.fileio import ensure_writable_dir, stable_hash, write_json_atomic
from nnship.tune.fingerprint import machine_fingerprint
from nnship.tune.pareto import compute_pareto, retime_fronts, write_pareto
from nnship.tune.records import (
    PARETO_NAME,
    SETTINGS_NAME,
    TRIALS_NAME,
    ParetoFile,
    TrialRecord,
    TuneSettings,
    append_trial,
    read_trials,
)
from nnship.tune.space import TuneSpace, space_hash, validate_space
from nnship.tune.storage import (
    TrialHeartbeat,
    heartbeat_interval,
    open_ask_lock,
    open_storage,
    redact_url,
)
from nnship.tune.study import (
    CONSTRAINTS_ATTR,
    WORKER_ATTR,
    open_study,
    recover_interrupted,
)
from nnship.tune.trial import (
    NOT_MEASURED_VIOLATION,
    HopelessTrial,
    best_artifact,
    check_objectives_measurable,
    distill_early_stop,
    failed_record,
    objective_values,
    sample_params,
    score_trial,
    trial_recipe,
    worker_name,
)

log = logging.getLogger(__name__)

__all__ = ["TuneRun", "default_tune_dir", "run_tune"]

DEFAULT_TRIALS = 20
LARGE_VALUE = 1e12
"""What Optuna is told for an objective a trial could not measure (it needs finite values)."""


@dataclass
class TuneRun:
    """What `run_tune` did: the folder, the study, the trials this call ran, and the fronts."""

    tune_dir: Path
    study_name: str
    storage: str
    ran: list[TrialRecord] = field(default_factory=list)
    records: list[TrialRecord] = field(default_factory=list)
    pareto: ParetoFile | None = None
    resumed_interrupted: list[int] = field(default_factory=list)
    stopped_by: str = "trials"


def default_tune_dir(recipe: Any) -> Path:
    """`build/<recipe name>-tune` in the working directory."""
    return Path("build", f"{recipe.name}-tune").absolute()


def _recipe_hash_data(recipe: Any) -> dict[str, Any]:
    data = recipe.model_dump(mode="json", by_alias=True, exclude_unset=True)
    data.pop("tune", None)
    data.pop("output_dir", None)
    return data


def _check_constraints_measurable(recipe: Any, space: TuneSpace) -> None:
    """An accuracy constraint needs labelled evaluation data: say so before any trial."""
    name = str(recipe.path) if recipe.path else "recipe"
    if "max_top1_drop" not in space.config.constraints:
        return
    cfg = recipe.data.evaluation or recipe.data.calibration
    if cfg is None:
        raise RecipeError(
            f"{name}: [tune] constraint max_top1_drop needs labelled evaluation data "
            "([data.evaluation] with labels); without labels use min_top1_agreement"
        )
    from nnship.sources.data import open_data_config

    data = open_data_config(cfg, None, recipe.base_dir)
    if not data.has_labels:
        raise RecipeError(
            f"{name}: [tune] constraint max_top1_drop is an accuracy budget, but the evaluation "
            f"data {data.describe()} has no labels; use min_top1_agreement (percent of samples "
            "whose top-1 class matches the float model) instead"
        )


def _prepare_dir(tune_dir: Path, force: bool, resume: bool, shared: bool) -> None:
    ensure_writable_dir(tune_dir)
    if force:
        for name in (TRIALS_NAME, PARETO_NAME, "pareto.md", SETTINGS_NAME):
            (tune_dir / name).unlink(missing_ok=True)
        shutil.rmtree(tune_dir / "trials", ignore_errors=True)
    elif (tune_dir / TRIALS_NAME).exists() and not (resume or shared):
        raise RecipeError(
            f"'{tune_dir}' already holds a tune run: --resume to continue it, --force to "
            "start a new study there, or -o another folder"
        )


def _finished_count(study: Any) -> tuple[int, int]:
    """(finished trials that count against the budget, trials running now). A failed trial
    that was re-queued (interrupted) does not count; its rerun does."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried: set[int] = set()
    for t in trials:
        retried.update(t.system_attrs.get("retry_history", []))
    done = sum(
        1
        for t in trials
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        or (t.state == TrialState.FAIL and t.number not in retried)
    )
    running = sum(1 for t in trials if t.state == TrialState.RUNNING)
    return done, running


def _tell_from_record(study: Any, trial_number: int, record: TrialRecord, space: TuneSpace) -> None:
    """A trial appended to trials.jsonl but killed before Optuna was told: tell it now. Its
    user attributes are in the study already: `_run_one` sets them on the live trial before
    it appends the record."""
    from optuna.trial import TrialState

    if record.state == "pruned":
        study.tell(trial_number, state=TrialState.PRUNED)
    elif record.state == "failed":
        study.tell(trial_number, state=TrialState.FAIL)
    else:
        study.tell(trial_number, _optuna_values(record, space)[0])


def _optuna_values(record: TrialRecord, space: TuneSpace) -> tuple[list[float], list[float]]:
    best = best_artifact(record.artifacts, space.config.objectives)
    values = [LARGE_VALUE] * len(space.config.objectives)
    if best is not None:
        values = [
            v if math.isfinite(v) else LARGE_VALUE
            for v in objective_values(best, space.config.objectives)
        ]
    constraints = [
        (best.missed.get(k, 0.0) if best is not None else NOT_MEASURED_VIOLATION)
        for k in space.config.constraints
    ]
    return values, constraints


def _recover(study: Any, tune_dir: Path, space: TuneSpace, fingerprint: Any) -> list[int]:
    """Interrupted trials: told from trials.jsonl when their record made it there, else
    failed (recorded) and re-queued with the same parameters."""
    from optuna.trial import TrialState

    recorded = {r.number: r for r in read_trials(tune_dir)}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if trial.number in recorded and recorded[trial.number].worker == trial.user_attrs.get(
            WORKER_ATTR
        ):
            _tell_from_record(study, trial.number, recorded[trial.number], space)
    interrupted = recover_interrupted(study)
    for frozen in interrupted:
        append_trial(
            tune_dir,
            TrialRecord(
                number=frozen.number,
                state="failed",
                params=dict(frozen.user_attrs.get("recipe_params", {})),
                reason=(
                    f"interrupted: worker {frozen.user_attrs.get(WORKER_ATTR)} stopped mid-trial; "
                    "rerun with the same parameters"
                ),
                fingerprint=fingerprint,
                worker=str(frozen.user_attrs.get(WORKER_ATTR, "")),
                build_dir=str(tune_dir / "trials" / str(frozen.number)),
            ),
        )
    return [t.number for t in interrupted]


def run_tune(
    recipe: Any,
    *,
    tune_dir: Path,
    storage_url: str | None = None,
    study_name: str | None = None,
    cache: Path | None = None,
    resume: bool = False,
    force: bool = False,
    trials: int | None = None,
    timeout_s: float | None = None,
    progress: Any = None,
    retime: bool = True,
) -> TuneRun:
    """Run (or continue) the tune study of `recipe` (a loaded `Recipe` with `[tune]`) into
    `tune_dir`. `trials` / `timeout_s` override the recipe's; `progress` is an object with
    `start(total, done)`, `trial_done(record, records)` and `stop()` (the CLI's display).
    Raises `RecipeError` (exit 2) for a bad space, a study of another recipe, or a folder
    that holds a run when neither `resume` nor `force` is given."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # nnship reports the trials itself
    space = validate_space(recipe)
    check_objectives_measurable(recipe, space)
    _check_constraints_measurable(recipe, space)
    cfg = space.config
    budget = (
        trials or cfg.trials or (space.grid_size() if cfg.sampler == "grid" else DEFAULT_TRIALS)
    )
    if cfg.sampler == "grid":
        # Optuna's GridSampler hands out a point another worker is still running once every
        # point has started, so the grid's size is the budget: a worker then waits for the
        # running points (one may be re-queued from a dead worker) instead of repeating one.
        budget = min(budget, space.grid_size())
    timeout = timeout_s if timeout_s is not None else cfg.timeout_s
    seed = cfg.seed if cfg.seed is not None else recipe.seed
    tune_dir = Path(tune_dir).absolute()
    shared = storage_url is not None
    _prepare_dir(tune_dir, force, resume, shared)
    storage = open_storage(storage_url, tune_dir)
    name = study_name or recipe.name
    recipe_data = _recipe_hash_data(recipe)
    r_hash, s_hash = stable_hash(recipe_data)[:16], space_hash(space)
    study = open_study(
        storage,
        name,
        space,
        recipe_hash=r_hash,
        recipe_data=recipe_data,
        space_hash=s_hash,
        seed=seed,
        resume=resume,
        force=force,
        shared=shared,
    )
    cache_dir = Path(cache).expanduser().absolute() if cache else tune_dir / "cache"
    url_shown = redact_url(storage_url) if storage_url else f"sqlite:///{tune_dir / 'study.db'}"
    write_json_atomic(
        tune_dir / SETTINGS_NAME,
        TuneSettings(
            study=name,
            storage=url_shown,
            recipe_hash=r_hash,
            space_hash=s_hash,
            recipe_path=str(recipe.path) if recipe.path else None,
            sampler=cfg.sampler,
            seed=seed,
            objectives=list(cfg.objectives),
            constraints=dict(cfg.constraints),
            cache=str(cache_dir),
        ).model_dump(mode="json"),
    )
    fingerprint = machine_fingerprint()
    run = TuneRun(tune_dir, name, url_shown)
    run.resumed_interrupted = _recover(study, tune_dir, space, fingerprint)
    started_run = time.time()
    done, _ = _finished_count(study)
    lock = open_ask_lock(storage_url, tune_dir, name)
    if progress is not None:
        progress.start(budget, done, read_trials(tune_dir))
    try:
        while True:
            if timeout is not None and time.time() - started_run >= timeout:
                run.stopped_by = "timeout"
                break
            with lock:
                optuna.storages.fail_stale_trials(study)
                done, running = _finished_count(study)
                grid_done = cfg.sampler == "grid" and study.sampler.is_exhausted(study)
                over = (done + running >= budget or grid_done) and _waiting(study) == 0
                asked = None if over else _ask(study, storage)
            if asked is None:
                # Another worker's trial still RUNNING may belong to a dead worker: with
                # heartbeats it goes stale after the grace period and is re-queued (WAITING),
                # and this worker must be there to rerun it, or the study ends one trial short.
                interval = heartbeat_interval(storage)
                if running and interval:
                    time.sleep(min(interval, 5))
                    continue
                run.stopped_by = "grid exhausted" if grid_done else "trials"
                break
            trial, heartbeat = asked
            record = _run_one(
                study, trial, heartbeat, recipe, space, tune_dir, cache_dir, fingerprint
            )
            run.ran.append(record)
            if progress is not None:
                progress.trial_done(record, read_trials(tune_dir))
    finally:
        lock.close()
        gc.unfreeze()
        if progress is not None:
            progress.stop()
    run.records = all_records(study, tune_dir)
    pareto = compute_pareto(run.records, list(cfg.objectives), dict(cfg.constraints))
    if retime and "latency" in cfg.objectives and pareto.groups:
        pareto = _retime(pareto, fingerprint.id, recipe)
    write_pareto(tune_dir, pareto)
    from nnship.tune.html import write_tune_html

    write_tune_html(tune_dir, tune_dir / "tune.html")
    run.pareto = pareto
    return run


def _waiting(study: Any) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


def _retime(pareto: ParetoFile, fingerprint_id: str, recipe: Any) -> ParetoFile:
    from nnship.sources.data import open_data_config

    cfg = recipe.data.evaluation or recipe.data.calibration
    data = open_data_config(cfg, None, recipe.base_dir) if cfg is not None else None
    if data is None:
        log.info("no data in the recipe: the fronts are not re-timed")
        return pareto
    try:
        return retime_fronts(
            pareto, fingerprint_id, recipe.backends, recipe.validation.latency, data
        )
    except NnshipError as exc:  # a front whose artifact went missing: keep the trial numbers
        log.warning("re-timing the fronts failed: %s", exc)
        return pareto


RECORD_ATTR = "nnship_record"
"""The trial's `TrialRecord` (JSON) in the study storage, so every worker sees every trial."""


def _save(study: Any, trial: Any, tune_dir: Path, record: TrialRecord) -> None:
    append_trial(tune_dir, record)
    try:
        trial.set_user_attr(RECORD_ATTR, record.model_dump(mode="json"))
    except Exception as exc:  # the line in trials.jsonl is there; the storage copy is a bonus
        log.warning("trial %d: cannot store its record in the study: %s", record.number, exc)


def all_records(study: Any, tune_dir: Path) -> list[TrialRecord]:
    """Every finished trial of the study: this folder's `trials.jsonl` and the records other
    workers stored in the study (on a server storage they write to their own folders)."""
    by_number = {r.number: r for r in read_trials(tune_dir)}
    for trial in study.get_trials(deepcopy=False):
        data = trial.user_attrs.get(RECORD_ATTR)
        if data is not None and trial.number not in by_number:
            by_number[trial.number] = TrialRecord.model_validate(data)
    return [by_number[n] for n in sorted(by_number)]


def _compress_key(recipe: Any) -> str | None:
    """What a distillation's outcome depends on (None when the trial does not distill)."""
    if recipe.distill is None:
        return None
    data = recipe.model_dump(mode="json", by_alias=True)
    keys = ("model", "prune", "distill", "data", "seed")
    return stable_hash({k: data.get(k) for k in keys})[:16]


def _known_hopeless(tune_dir: Path, key: str | None) -> str | None:
    """The reason a trial with the same compression settings was stopped early, if one was:
    the same distillation would be stopped again (it is deterministic)."""
    if key is None:
        return None
    for record in read_trials(tune_dir):
        if record.state == "pruned" and record.compress_key == key:
            return f"same prune/distill settings as trial {record.number}: {record.reason}"
    return None


def _ask(study: Any, storage: Any) -> tuple[Any, TrialHeartbeat]:
    """A new trial (a re-queued one first) and its heartbeat, the first one recorded at once:
    Optuna counts a trial as stale only once it has one, so a worker killed before its
    heartbeat thread starts still leaves a trial that the others rerun."""
    trial = study.ask()
    heartbeat = TrialHeartbeat(storage, study.study_name, trial.number)
    heartbeat.beat()
    trial.set_user_attr(WORKER_ATTR, worker_name())
    return trial, heartbeat


def _run_one(
    study: Any,
    trial: Any,
    heartbeat: TrialHeartbeat,
    recipe: Any,
    space: TuneSpace,
    tune_dir: Path,
    cache_dir: Path,
    fingerprint: Any,
) -> TrialRecord:
    """Build the asked `trial`, append it to trials.jsonl, tell."""
    from optuna.trial import TrialState

    from nnship.pipeline import build

    # Latency timing collects garbage before each timed loop; objects alive now (torch,
    # Optuna, SQLAlchemy: hundreds of thousands) never die, so move them out of the
    # collector's way: a full collection then takes milliseconds instead of half a second.
    gc.collect()
    gc.freeze()
    worker = worker_name()
    started = time.time()
    build_dir = tune_dir / "trials" / str(trial.number)
    params: dict[str, Any] = {}
    trial_rec = None
    try:
        params = sample_params(trial, space, recipe)
        trial.set_user_attr("recipe_params", params)
        trial_rec = trial_recipe(recipe, space, params)
        compress_key = _compress_key(trial_rec)
        hopeless = _known_hopeless(tune_dir, compress_key)
        if hopeless is not None:
            raise HopelessTrial(hopeless)
        if build_dir.exists():
            shutil.rmtree(build_dir)
        log.info("trial %d: %s", trial.number, params)
        with heartbeat:
            result = build(
                trial_rec,
                output_dir=build_dir,
                cache=cache_dir,
                on_distill_epoch=distill_early_stop(space),  # its own best-so-far per trial
                baseline_cache=True,
            )
        record = score_trial(
            trial.number,
            params,
            trial_rec,
            result,
            space,
            fingerprint=fingerprint,
            started=started,
            worker=worker,
        )
        record.compress_key = compress_key
    except HopelessTrial as exc:
        record = failed_record(
            trial.number,
            params,
            trial_rec,
            state="pruned",
            reason=exc.reason,
            fingerprint=fingerprint,
            started=started,
            worker=worker,
            build_dir=build_dir,
        )
        record.compress_key = _compress_key(trial_rec) if trial_rec is not None else None
        _save(study, trial, tune_dir, record)
        study.tell(trial, state=TrialState.PRUNED)
        log.info("trial %d pruned: %s", trial.number, exc.reason)
        return record
    except Exception as exc:  # one bad point must not end the study; the reason is kept
        if not isinstance(exc, NnshipError):
            log.exception("trial %d failed with an internal error", trial.number)
        reason = f"{type(exc).__name__}: {exc}" if not isinstance(exc, NnshipError) else str(exc)
        record = failed_record(
            trial.number,
            params,
            trial_rec,
            state="failed",
            reason=reason,
            fingerprint=fingerprint,
            started=started,
            worker=worker,
            build_dir=build_dir,
        )
        _save(study, trial, tune_dir, record)
        study.tell(trial, state=TrialState.FAIL)
        log.warning("trial %d failed: %s", trial.number, reason)
        return record
    values, constraints = _optuna_values(record, space)
    trial.set_user_attr(CONSTRAINTS_ATTR, constraints)
    trial.set_user_attr("feasible", record.feasible)
    _save(study, trial, tune_dir, record)  # first the record, then the tell: nothing is lost
    study.tell(trial, values)
    return record
