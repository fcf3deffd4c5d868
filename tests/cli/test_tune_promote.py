"""`nnship tune promote`: the trial's recipe plus what no trial changes (`[bundle]`)."""

from __future__ import annotations

import textwrap

from nnship import api
from nnship.cli import main as cli_main
from nnship.core import toml
from nnship.core.fileio import write_json_atomic
from nnship.recipe import load_recipe
from nnship.tune.records import SETTINGS_NAME, TrialRecord, TuneSettings, append_trial
from nnship.tune.space import validate_space
from nnship.tune.trial import recipe_data, trial_recipe

RECIPE = """
name = "digits"

[model]
source = "model.onnx"

[quantize]
precisions = ["int8"]

[bundle]
output = "dist/digits"
archive = true
labels = ["zero", "one"]

[tune]
sampler = "grid"

[tune.space]
"quantize.method" = ["minmax", "percentile"]
"""


def _tune_folder(tmp_path, recipe_path, trial: int, params: dict):
    """A tune folder as `nnship tune` leaves it: tune.json and one trial in trials.jsonl."""
    recipe = load_recipe(recipe_path, check_files=False)
    built = trial_recipe(recipe, validate_space(recipe), params)
    folder = tmp_path / "tune"
    folder.mkdir()
    append_trial(
        folder,
        TrialRecord(number=trial, state="complete", params=params, recipe=recipe_data(built)),
    )
    settings = TuneSettings(
        study="digits", storage="sqlite:///study.db", recipe_hash="0", space_hash="0",
        recipe_path=str(recipe_path),
    )  # fmt: skip
    write_json_atomic(folder / SETTINGS_NAME, settings.model_dump(mode="json"))
    return folder


def test_promote_keeps_the_bundle_section_the_trial_left_out(tmp_path):
    recipe_path = tmp_path / "recipe.toml"
    recipe_path.write_text(textwrap.dedent(RECIPE), encoding="utf-8")
    folder = _tune_folder(tmp_path, recipe_path, 3, {"quantize.method": "percentile"})
    out = tmp_path / "best.toml"

    code = cli_main.main(["tune", "promote", str(folder), "--trial", "3", "-o", str(out)])

    assert code == 0
    promoted = toml.loads(out.read_text(encoding="utf-8"))
    assert "tune" not in promoted
    assert promoted["quantize"]["method"] == "percentile"
    assert promoted["bundle"] == {
        "output": str(tmp_path / "dist" / "digits"),
        "archive": True,
        "labels": ["zero", "one"],
    }
    assert load_recipe(out, check_files=False).bundle.archive is True


def test_promote_without_the_tuned_recipe_file_writes_the_trial_and_says_so(tmp_path, caplog):
    recipe_path = tmp_path / "recipe.toml"
    recipe_path.write_text(textwrap.dedent(RECIPE), encoding="utf-8")
    folder = _tune_folder(tmp_path, recipe_path, 0, {"quantize.method": "minmax"})
    recipe_path.unlink()
    out = tmp_path / "best.toml"

    api.tune_promote(folder, trial=0, output=out)

    assert "bundle" not in toml.loads(out.read_text(encoding="utf-8"))
    assert "no [bundle] of the tuned recipe" in caplog.text and "recipe.toml" in caplog.text
