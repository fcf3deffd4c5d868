"""`nnship tune promote`: one trial's recipe as a plain recipe file (no `[tune]`).

The trial's recipe is stored in `trials.jsonl` as the keys the recipe and the parameters set
(defaults left out, paths resolved), so `nnship build` of the written file runs the same
stages with the same inputs and writes the same artifacts (same SHA-256). A trial builds no
bundle (`trial_recipe` leaves `[bundle]` out: every trial would write the same folder), but
the promoted recipe is a deployment: its `[bundle]` comes back from the tuned recipe file
(`tune.json`'s `recipe_path`), as that file sets it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from nnship.core.errors import NnshipError, RecipeError
from nnship.core.fileio import write_text_atomic
from nnship.recipe import dumps_toml, load_recipe, recipe_from_data
from nnship.tune.records import read_settings, read_trials
from nnship.tune.result import PromotedRecipe

__all__ = ["promote_trial"]

log = logging.getLogger(__name__)

UNTRIALLED_SECTIONS = ("bundle",)
"""Top-level sections a trial's recipe leaves out although no trial changes them."""


def promote_trial(tune_dir: Path | str, trial: int, output: Path | str) -> PromotedRecipe:
    """Write trial `trial`'s recipe of `tune_dir` to `output` (TOML), with the tuned recipe's
    `[bundle]`. Raises `RecipeError` when the trial is not in `trials.jsonl` or did not build
    (pruned, failed); a tuned recipe file that cannot be read is logged (warning) and the
    recipe written without `[bundle]`."""
    tune_dir = Path(tune_dir)
    records = {r.number: r for r in read_trials(tune_dir)}
    if not records:
        raise RecipeError(f"'{tune_dir}' holds no finished trial (no trials.jsonl)")
    record = records.get(trial)
    if record is None:
        raise RecipeError(
            f"trial {trial} is not among the finished trials of '{tune_dir}' "
            f"({', '.join(str(n) for n in sorted(records))})"
        )
    if record.state not in ("complete", "infeasible"):
        raise RecipeError(f"trial {trial} did not build ({record.state}: {record.reason})")
    kept, source = _untrialled_sections(tune_dir)
    recipe = _merged(kept, record.recipe)
    recipe_from_data(recipe, name=f"trial {trial}", check_files=False)  # still valid
    params = ", ".join(f"{k} = {v!r}" for k, v in record.params.items())
    header = (
        f"# Promoted by `nnship tune promote` from {tune_dir.absolute()}, trial {trial}"
        f" ({record.state}).\n# Parameters: {params or 'none'}\n"
    )
    if kept:
        header += f"# {', '.join(f'[{k}]' for k in kept)} as in {source}\n"
    path = write_text_atomic(Path(output), header + dumps_toml(recipe))
    return PromotedRecipe(
        path=path,
        trial=trial,
        params=dict(record.params),
        artifacts={a.label: a.sha256 or "" for a in record.artifacts},
    )


def _untrialled_sections(tune_dir: Path) -> tuple[dict[str, Any], Path | None]:
    """The `UNTRIALLED_SECTIONS` the tuned recipe file sets (paths resolved), and that file."""
    try:
        recipe_path = read_settings(tune_dir).recipe_path
        recipe = load_recipe(recipe_path, check_files=False) if recipe_path else None
    except NnshipError as exc:
        log.warning("The promoted recipe has no [bundle] of the tuned recipe: %s", exc)
        return {}, None
    if recipe is None:
        log.info("The tune ran on a Recipe built in Python: no [bundle] to carry over")
        return {}, None
    data = recipe.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return {k: data[k] for k in UNTRIALLED_SECTIONS if k in data}, Path(str(recipe_path))


def _merged(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """`top` with what only `base` has added after it, tables merged key by key (`top`
    wins)."""
    out = dict(top)
    for key, value in base.items():
        if key not in out:
            out[key] = value
        elif isinstance(value, dict) and isinstance(out[key], dict):
            out[key] = _merged(value, out[key])
    return out
