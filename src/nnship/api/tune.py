"""`nnship tune`, `nnship tune show`, `nnship tune promote`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nnship.recipe import Recipe
from nnship.tune.result import PromotedRecipe, TuneResult, TuneSummary


def tune(
    recipe: Recipe | str | Path,
    *,
    output_dir: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    trials: int | None = None,
    sampler: str | None = None,
    seed: int | None = None,
    timeout_s: float | None = None,
    constraints: Mapping[str, float] | None = None,
    storage: str | None = None,
    study: str | None = None,
    cache: str | Path | None = None,
    resume: bool = False,
    force: bool = False,
    quiet: bool = False,
) -> TuneResult:
    """`nnship tune`: search the recipe's `[tune.space]` for the fastest / smallest artifacts
    that meet the `[tune] constraints`, one build per trial, on Optuna.

    `output_dir` is the tune folder (default `build/<name>-tune`): `study.db`, `trials.jsonl`,
    `pareto.json`, `pareto.md`, `trials/<n>/` (each trial's build) and `cache/` (the stage
    cache the trials share; `cache` puts it elsewhere, e.g. on a shared path). `trials`,
    `sampler` ("tpe", "random", "grid", "nsga2"), `seed`, `timeout_s` (seconds) and
    `constraints` (validate gates, e.g. `{"max_top1_drop": 1.0}`) override the recipe's
    `[tune]`; `overrides` are dotted recipe keys applied first. `storage` is an Optuna storage
    URL (default: the tune folder's SQLite file), `study` the study name (default: the recipe
    name); workers running the same line on one server storage share the study. `resume`
    continues a killed run (its interrupted trial is rerun, finished ones never); `force`
    starts a new study in a folder that holds one. `quiet` prints one line per trial.
    Returns the `TuneResult` (exit code 0 when a feasible point exists, 1 when none met the
    constraints: `pareto.relaxed` then names the closest trial). Bad spaces, a study of
    another recipe and unreachable storages raise `NnshipError` subclasses (exit 2).
    """
    from nnship.recipe import apply_overrides, load_recipe
    from nnship.tune.display import TuneProgress
    from nnship.tune.engine import default_tune_dir, run_tune

    merged = dict(overrides or {})
    for key, value in (("trials", trials), ("sampler", sampler), ("seed", seed)):
        if value is not None:
            merged[f"tune.{key}"] = value
    for gate, bound in (constraints or {}).items():
        merged[f"tune.constraints.{gate}"] = bound
    if isinstance(recipe, Recipe):
        loaded = apply_overrides(recipe, merged) if merged else recipe
    else:
        loaded = load_recipe(recipe, overrides=merged)
    tune_dir = Path(output_dir) if output_dir is not None else default_tune_dir(loaded)
    run = run_tune(
        loaded,
        tune_dir=tune_dir,
        storage_url=storage,
        study_name=study,
        cache=Path(cache) if cache is not None else None,
        resume=resume,
        force=force,
        timeout_s=timeout_s,
        progress=TuneProgress(quiet=quiet),
    )
    assert run.pareto is not None
    return TuneResult(
        tune_dir=run.tune_dir,
        study=run.study_name,
        storage=run.storage,
        records=run.records,
        ran=[r.number for r in run.ran],
        pareto=run.pareto,
        pareto_path=run.tune_dir / "pareto.json",
        stopped_by=run.stopped_by,
        resumed_interrupted=run.resumed_interrupted,
    )


def tune_show(tune_dir: str | Path, *, html: str | Path | None = None) -> TuneSummary:
    """`nnship tune show`: the Pareto fronts and trials of a tune folder (`pareto.json`,
    `trials.jsonl`); with `html`, also writes the self-contained HTML report there."""
    from nnship.tune.show import show_tune

    return show_tune(tune_dir, html=html)


def tune_promote(tune_dir: str | Path, *, trial: int, output: str | Path) -> PromotedRecipe:
    """`nnship tune promote`: write trial `trial`'s recipe as a plain recipe TOML (no
    `[tune]`) at `output`; `nnship build` of it reproduces the trial's artifacts."""
    from nnship.tune.promote import promote_trial

    return promote_trial(tune_dir, trial, output)
