"""Tune tests: the trained 8x8 digits CNN, quantize-only or tiny prune spaces (a trial takes
about a second once the stage cache is warm)."""

from __future__ import annotations

import textwrap

import pytest


@pytest.fixture
def tune_recipe_text(tiny_recipe_text) -> str:
    """The tiny recipe with latency on (few runs), a fast INT8 quantizer and `[tune]` header
    keys left to the test: append `[tune]` / `[tune.space]` text to it."""
    text = tiny_recipe_text.replace("enabled = false", "enabled = true")
    return text + textwrap.dedent(
        """
        [quantize]
        precisions = ["int8"]
        method = "minmax"
        equalization = "off"
        smoothing = "off"
        bias_correction = "off"
        """
    )


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory):
    """A stage cache shared by the tests that do not count stage runs (warm after the first)."""
    return tmp_path_factory.mktemp("tune-cache")


@pytest.fixture
def tune_recipe(tune_recipe_text, write_recipe):
    """`tune_recipe(tune_section, name="recipe.toml")` writes the tiny recipe plus `tune_section`."""

    def write(tune_section: str, name: str = "recipe.toml"):
        return write_recipe(tune_recipe_text + textwrap.dedent(tune_section), name)

    return write


GRID_2X2 = """
[tune]
sampler = "grid"
constraints = { max_top1_drop = 5.0 }

[tune.space]
"quantize.method" = ["minmax", "percentile"]
"quantize.per_channel" = [true, false]
"""
