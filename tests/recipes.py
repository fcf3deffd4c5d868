"""Recipe text for the trained digits CNN that many tests build (imported as `tests.recipes`:
a plain module, because `from conftest import ...` resolves to whichever conftest.py was
imported last)."""

from __future__ import annotations

import textwrap
from pathlib import Path


def digits_recipe(
    weights: Path | str, data: dict[str, Path], *, name: str = "tiny", sections: str = ""
) -> str:
    """The digits CNN (`nnship.models:digits_cnn`, width 8) with `weights` and the calibration
    and evaluation files of `data`, followed by `sections` (TOML, dedented)."""
    head = textwrap.dedent(
        f"""\
        name = "{name}"
        seed = 0

        [model]
        source = "nnship.models:digits_cnn"
        inputs = ["x:1x1x8x8"]
        factory_kwargs = {{ width = 8 }}
        weights = "{weights}"

        [data.calibration]
        path = "{data["calibration"]}"

        [data.evaluation]
        path = "{data["evaluation"]}"
        """
    )
    return head + "\n" + textwrap.dedent(sections).lstrip("\n")
