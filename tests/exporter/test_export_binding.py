"""Inputs declared under other names than `forward`'s parameters bind by position, and a
failed export names its root cause (issue 9, defect 1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from nnship.backends.onnxruntime import OnnxRuntimeRunner
from nnship.core import TensorSpec
from nnship.core.errors import DataError
from nnship.exporter import ExportConfig, export_onnx
from nnship.exporter.torch_export import summarize_export_error


class NamedInputs(nn.Module):
    """`forward(self, inputs)`, as EfficientNet ports declare it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.conv(inputs).mean((2, 3))


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_declared_name_that_is_not_a_parameter_binds_by_position(
    tmp_path: Path, exporter: str
) -> None:
    torch.manual_seed(0)
    module = NamedInputs().eval()
    result = export_onnx(
        module,
        tmp_path / "m.onnx",
        input_specs=[TensorSpec("x", (1, 3, 8, 8))],
        options=ExportConfig(exporter=exporter),
    )
    model = onnx.load(str(result.onnx_path))
    assert [i.name for i in model.graph.input] == ["x"]
    x = np.random.default_rng(0).standard_normal((3, 3, 8, 8)).astype(np.float32)
    with OnnxRuntimeRunner(result.onnx_path) as runner:
        got = runner.run({"x": x})["output"]
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)  # dynamic batch 3, never traced


def test_wrong_input_count_is_a_clear_error(tmp_path: Path) -> None:
    specs = [TensorSpec("x", (1, 3, 8, 8)), TensorSpec("y", (1, 3, 8, 8))]
    with pytest.raises(DataError, match=r"do not match NamedInputs.forward\(inputs\)"):
        export_onnx(NamedInputs(), tmp_path / "m.onnx", input_specs=specs)
    assert not (tmp_path / "m.onnx").exists()


def test_error_names_the_root_cause_not_the_control_flow_context() -> None:
    # What torch.export raises for kwargs that do not bind: a TypeError raised while handling
    # a StopIteration (inspect.Signature.bind), wrapped by the exporter's own error.
    try:
        try:
            try:
                raise StopIteration
            except StopIteration:
                raise TypeError("missing a required argument: 'inputs'") from None
        except TypeError as inner:
            raise RuntimeError("Failed to export the model with torch.export") from inner
    except RuntimeError as outer:
        message = summarize_export_error(outer, "M", "dynamo")
    assert "TypeError: missing a required argument: 'inputs'" in message
    assert "StopIteration" not in message


def test_implicit_context_still_reaches_the_real_error() -> None:
    try:
        try:
            raise KeyError("aten::foo has no ONNX function")
        except KeyError:
            raise RuntimeError("conversion failed")  # noqa: B904 - no `from`, as some libraries do
    except RuntimeError as outer:
        message = summarize_export_error(outer, "M", "dynamo")
    assert "KeyError" in message and "aten::foo" in message
