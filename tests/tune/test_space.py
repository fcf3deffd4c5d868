"""`[tune.space]` validation: every key checked against the recipe schema before any trial."""

from __future__ import annotations

import pytest

from nnship.core.errors import RecipeError
from nnship.recipe import load_recipe
from nnship.tune.space import parse_condition, validate_space


def _space(tune_recipe, text):
    return validate_space(load_recipe(tune_recipe(text)))


def test_a_valid_space_has_its_parameters_in_order(tune_recipe):
    space = _space(
        tune_recipe,
        """
        [tune]
        [tune.space]
        "quantize.method" = ["minmax", "mse"]
        "quantize.percentile" = { low = 99.0, high = 99.99 }
        "distill.epochs" = { low = 2, high = 12, step = 2, when = "prune.ratio > 0" }
        "distill.lr" = { low = 1e-4, high = 3e-3, log = true }
        "backends.targets" = [["onnxruntime"], ["openvino"]]
        """,
    )
    kinds = [(p.key, p.kind) for p in space.parameters]
    assert kinds == [
        ("quantize.method", "categorical"),
        ("quantize.percentile", "float"),
        ("distill.epochs", "int"),
        ("distill.lr", "float"),
        ("backends.targets", "categorical"),
    ]
    assert space.parameters[2].condition.holds({"prune.ratio": 0.5})
    assert not space.parameters[2].condition.holds({"prune.ratio": 0.0})


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('"quantize.methd" = ["minmax"]', "quantize.methd"),
        ('"quantize.method" = ["minmax", "nearest"]', "'quantize.method' = \"nearest\""),
        ('"prune.ratio" = { low = 0.5, high = 0.2 }', "low (0.5) > high (0.2)"),
        ('"quantize.method" = []', "empty list"),
        ('"distill.lr" = { low = 0.0, high = 1.0, log = true }', "log = true needs low > 0"),
        ('"prune.ratio" = [0.5, 1.5]', "'prune.ratio' = 1.5"),
    ],
)
def test_a_bad_key_or_range_names_the_key(tune_recipe, entry, message):
    with pytest.raises(RecipeError, match=None) as info:
        _space(tune_recipe, f"[tune]\n[tune.space]\n{entry}\n")
    assert message in str(info.value)


def test_a_grid_needs_discrete_ranges(tune_recipe):
    with pytest.raises(RecipeError, match="needs a step for the grid"):
        _space(
            tune_recipe,
            '[tune]\nsampler = "grid"\n[tune.space]\n"prune.ratio" = { low = 0.1, high = 0.5 }\n',
        )


def test_an_unknown_constraint_is_a_recipe_error(tune_recipe):
    with pytest.raises(RecipeError, match="max_top1_dorp"):
        load_recipe(
            tune_recipe(
                '[tune]\nconstraints = { max_top1_dorp = 1.0 }\n[tune.space]\n"seed" = [0]\n'
            )
        )


def test_conditions_read_toml_literals():
    cond = parse_condition('prune.ratio > 0 and quantize.method in ["mse", "entropy"]')
    assert cond.holds({"prune.ratio": 0.25, "quantize.method": "mse"})
    assert not cond.holds({"prune.ratio": 0.25, "quantize.method": "minmax"})
    with pytest.raises(ValueError, match="expected KEY OP VALUE"):
        parse_condition("prune.ratio is big")


def test_plain_build_ignores_the_tune_section(tune_recipe):
    recipe = load_recipe(tune_recipe('[tune]\n[tune.space]\n"quantize.method" = ["mse"]\n'))
    assert recipe.tune is not None and recipe.quantize.method == "minmax"


def test_cli_exits_2_naming_the_key_before_any_trial(tune_recipe, run_cli, tmp_path):
    recipe = tune_recipe('[tune]\n[tune.space]\n"quantize.nope" = [1, 2]\n')
    out = tmp_path / "t"
    proc = run_cli("tune", recipe, "-o", out)
    assert proc.returncode == 2, proc.stderr
    assert "quantize.nope" in proc.stderr and "Traceback" not in proc.stderr
    assert not (out / "trials.jsonl").exists()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("2h", 7200.0), ("30m", 1800.0), ("90s", 90.0), ("1h30m", 5400.0), ("45", 45.0)],
)
def test_timeout_durations(text, seconds):
    from nnship.cli.cmd_tune import parse_duration

    assert parse_duration(text) == seconds


def test_a_bad_duration_is_a_recipe_error():
    from nnship.cli.cmd_tune import parse_duration

    with pytest.raises(RecipeError, match="--timeout '5x'"):
        parse_duration("5x")


def test_a_failed_section_condition_removes_the_section(tune_recipe):
    from nnship.tune.trial import trial_recipe

    recipe = load_recipe(
        tune_recipe(
            """
            [tune]
            [tune.space]
            "prune.ratio" = [0.0, 0.5]
            "distill.epochs" = { low = 1, high = 3 }
            [tune.conditions]
            "prune" = "prune.ratio > 0"
            "distill" = "prune.ratio > 0"
            "distill.*" = "prune.ratio > 0"
            """
        )
    )
    space = validate_space(recipe)
    assert space.parameters[1].condition is not None
    unpruned = trial_recipe(recipe, space, {"prune.ratio": 0.0})
    assert unpruned.prune is None and unpruned.distill is None and unpruned.tune is None
    pruned = trial_recipe(recipe, space, {"prune.ratio": 0.5, "distill.epochs": 2})
    assert pruned.prune.ratio == 0.5 and pruned.distill.epochs == 2


def test_an_accuracy_budget_without_labels_suggests_agreement(tune_recipe, tmp_path):
    import numpy as np

    from nnship.tune.engine import run_tune

    np.savez(tmp_path / "nolabels.npz", x=np.zeros((4, 1, 8, 8), np.float32))
    recipe = load_recipe(
        tune_recipe('[tune]\nconstraints = { max_top1_drop = 1.0 }\n[tune.space]\n"seed" = [0]\n'),
        overrides={"data.evaluation.path": str(tmp_path / "nolabels.npz")},
    )
    with pytest.raises(RecipeError, match="no labels; use min_top1_agreement"):
        run_tune(recipe, tune_dir=tmp_path / "t")
    assert not (tmp_path / "t").exists()
