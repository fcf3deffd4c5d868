"""The recipe of the bundle tests' shared build (imported by conftest.py and the tests)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.recipes import digits_recipe

BUNDLE_SECTIONS = """
[quantize]
precisions = ["int8"]

[backends]
targets = ["onnxruntime", "openvino", "tensorrt"]
"""


def recipe_text(weights: Path, data: dict[str, Path], extra: str = "") -> str:
    sections = "\n[validate.latency]\nenabled = false\n" + BUNDLE_SECTIONS
    return digits_recipe(weights, data, sections=sections) + textwrap.dedent(extra)
