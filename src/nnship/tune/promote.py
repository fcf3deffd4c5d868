"""`nnship tune promote`: one trial's recipe as a plain recipe file (no `[tune]`).

The trial's recipe is stored in `trials.jsonl` as the keys the recipe and the parameters set
(defaults left out, paths resolved), so `nnship build` of the written file runs the same
stages with the same inputs and writes the same artifacts (same SHA-256).
"""

from __future__ import annotations

from pathlib import Path

from nnship.core.errors import RecipeError
from nnship.core.fileio import write_text_atomic
from nnship.recipe import dumps_toml, recipe_from_data
from nnship.tune.records import read_trials
from nnship.tune.result import PromotedRecipe

__all__ = ["promote_trial"]


def promote_trial(tune_dir: Path | str, trial: int, output: Path | str) -> PromotedRecipe:
    """Write trial `trial`'s recipe of `tune_dir` to `output` (TOML). Raises `RecipeError`
    when the trial is not in `trials.jsonl` or did not build (pruned, failed)."""
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
    recipe_from_data(record.recipe, name=f"trial {trial}", check_files=False)  # still valid
    params = ", ".join(f"{k} = {v!r}" for k, v in record.params.items())
    header = (
        f"# Promoted by `nnship tune promote` from {tune_dir.absolute()}, trial {trial}"
        f" ({record.state}).\n# Parameters: {params or 'none'}\n"
    )
    path = write_text_atomic(Path(output), header + dumps_toml(record.recipe))
    return PromotedRecipe(
        path=path,
        trial=trial,
        params=dict(record.params),
        artifacts={a.label: a.sha256 or "" for a in record.artifacts},
    )
