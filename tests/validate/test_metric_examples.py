"""The example recipes of examples/metrics/: one per task metric family, each parses as a
recipe whose [validate.metric] is that family, and the user function of callable.toml runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nnship.metrics.task import METRIC_NAMES, open_scorer
from nnship.recipe import load_recipe

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "metrics"
FAMILIES = ("classification", "detection", "map", "sequence", "embedding", "signal", "callable")


def test_there_is_one_example_per_family() -> None:
    assert sorted(p.stem for p in EXAMPLES.glob("*.toml")) == sorted(FAMILIES)


@pytest.mark.parametrize("family", FAMILIES)
def test_each_example_recipe_parses_with_its_family_and_gates(family: str) -> None:
    recipe = load_recipe(EXAMPLES / f"{family}.toml", check_files=False)
    config = recipe.validation
    assert config.metric is not None and config.metric.kind == family
    gates = config.gates.task_gates()
    assert gates, f"{family}.toml gates on none of its values"
    if family in METRIC_NAMES:
        assert {g.metric for g in gates} <= set(METRIC_NAMES[family])


def test_the_callable_example_runs_on_logits() -> None:
    recipe = load_recipe(EXAMPLES / "callable.toml", check_files=False)
    scorer = open_scorer(recipe.validation.metric, recipe.base_dir)
    logits = np.random.default_rng(0).standard_normal((3, 5, 7))
    changed = logits.copy()
    changed[0, 0] = -changed[0, 0]  # the first step of the first sample picks another word
    scorer.update({"logits": logits}, {"logits": changed}, {}, None)
    values = scorer.result()
    assert values["word_agreement"] == pytest.approx(14 / 15)
    assert values["word_changes"] == pytest.approx(1 / 3)
