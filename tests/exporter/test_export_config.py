"""ExportConfig: the recipe's [export] section."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from nnship.exporter import ExportConfig


def test_defaults() -> None:
    config = ExportConfig()
    assert (config.exporter, config.opset, config.dynamic_batch, config.simplify) == (
        "dynamo",
        18,
        True,
        True,
    )
    assert (config.rtol, config.atol, config.fallback) == (1e-3, 1e-4, False)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"exporter": "onnxscript"}, "exporter"),
        ({"opset": 9}, "opset"),
        ({"atol": -1}, "atol"),
        ({"verify_samples": 0}, "verify_samples"),
        ({"dynamic_axes": {"x": {-1: "b"}}}, "dynamic_axes"),
        ({"dynamic_axes": {"x": {1: "not a name"}}}, "dynamic_axes"),
        ({"simplfy": False}, "simplfy"),
    ],
)
def test_invalid_values_name_the_field(data: dict, field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        ExportConfig(**data)


def test_toml_style_axis_keys_are_coerced() -> None:
    config = ExportConfig.model_validate({"dynamic_axes": {"input_ids": {"1": "sequence"}}})
    assert config.dynamic_axes == {"input_ids": {1: "sequence"}}


def test_config_import_does_not_need_torch() -> None:
    import subprocess
    import sys

    code = "import sys, nnship.exporter.config; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
