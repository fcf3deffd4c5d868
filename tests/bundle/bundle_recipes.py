"""The recipe of the bundle tests' shared build (imported by conftest.py and the tests)."""

from __future__ import annotations

import textwrap
from pathlib import Path

BUNDLE_SECTIONS = """
[quantize]
precisions = ["int8"]

[backends]
targets = ["onnxruntime", "openvino", "tensorrt"]
"""


def recipe_text(weights: Path, data: dict[str, Path], extra: str = "") -> str:
    return (
        textwrap.dedent(
            f"""\
        name = "tiny"
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

        [validate.latency]
        enabled = false
        """
        )
        + textwrap.dedent(BUNDLE_SECTIONS)
        + textwrap.dedent(extra)
    )
