"""export_onnx end to end: real torch exporters, the ONNX checker and ONNX Runtime."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from export_models import IMAGE, TOKENS, tiny_encoder, tiny_mobilenet, tiny_resnet, token_examples
from torch import nn

from nnship.backends.onnxruntime import OnnxRuntimeRunner
from nnship.backends.torch_runner import TorchRunner
from nnship.core import TensorSpec
from nnship.core.errors import ExportError, OutputPathError
from nnship.exporter import ExportConfig, export_onnx


def _agree_at_batch(module: nn.Module, path: Path, batch: dict[str, np.ndarray]) -> float:
    with OnnxRuntimeRunner(path) as ort_runner:
        got = ort_runner.run(batch)
    specs = [TensorSpec(n, a.shape, a.dtype.name) for n, a in batch.items()]
    want = TorchRunner(module, specs).run(batch)
    assert list(got) == list(want)
    return max(float(np.abs(got[k] - want[k]).max()) for k in want)


def test_resnet_default_export_is_checked_dynamic_and_verified(resnet_export) -> None:
    module, result = resnet_export
    model = onnx.load(str(result.onnx_path))
    onnx.checker.check_model(model, full_check=True)
    assert result.exporter == "dynamo" and result.opset == 18
    assert result.input_specs == [TensorSpec("x", ("batch", 3, 8, 8))]
    assert result.output_names == ["output"]
    assert result.max_abs_error < 1e-4 and result.verify_batch_size == 2
    # the dynamic batch axis works at a size never traced or verified
    x = np.random.default_rng(1).standard_normal((3, 3, 8, 8)).astype(np.float32)
    assert _agree_at_batch(module, result.onnx_path, {"x": x}) < 1e-4


def test_encoder_default_export_takes_int64_ids_and_mask(encoder_export) -> None:
    module, result = encoder_export
    assert [s.to_dict() for s in result.input_specs] == [
        {"name": "input_ids", "shape": ["batch", 6], "dtype": "int64"},
        {"name": "attention_mask", "shape": ["batch", 6], "dtype": "int64"},
    ]
    assert _agree_at_batch(module, result.onnx_path, token_examples(batch=3)) < 1e-4


@pytest.mark.slow
def test_mobilenet_default_export(tmp_path: Path) -> None:
    module = tiny_mobilenet()
    result = export_onnx(module, tmp_path / "m.onnx", input_specs=IMAGE)
    assert result.exporter == "dynamo" and result.max_abs_error < 1e-4
    x = np.random.default_rng(2).standard_normal((3, 3, 8, 8)).astype(np.float32)
    assert _agree_at_batch(module, result.onnx_path, {"x": x}) < 1e-4


@pytest.mark.parametrize(
    ("factory", "specs", "examples"),
    [(tiny_resnet, IMAGE, None), (tiny_encoder, TOKENS, token_examples())],
    ids=["resnet", "encoder"],
)
def test_torchscript_exporter(tmp_path: Path, factory, specs, examples) -> None:
    module = factory()
    options = ExportConfig(exporter="torchscript")
    out = tmp_path / "ts.onnx"
    result = export_onnx(module, out, input_specs=specs, example_inputs=examples, options=options)
    assert result.exporter == "torchscript" and result.opset == 18
    assert result.input_specs[0].shape[0] == "batch"
    batch = examples or {"x": np.ones((1, 3, 8, 8), np.float32)}
    batch = {k: np.concatenate([v] * 3) for k, v in batch.items()}
    assert _agree_at_batch(module, out, batch) < 1e-4


def test_static_batch_and_extra_dynamic_axis(tmp_path: Path) -> None:
    module = tiny_encoder()
    static = export_onnx(
        module,
        tmp_path / "static.onnx",
        input_specs=TOKENS,
        example_inputs=token_examples(),
        options=ExportConfig(exporter="torchscript", dynamic_batch=False, simplify=False),
    )
    assert static.input_specs[0].shape == (1, 6) and static.verify_batch_size == 1
    seq = {"input_ids": {1: "sequence"}, "attention_mask": {1: "sequence"}}
    dynamic = export_onnx(
        module,
        tmp_path / "seq.onnx",
        input_specs=TOKENS,
        example_inputs=token_examples(),
        options=ExportConfig(exporter="torchscript", dynamic_axes=seq),
    )
    assert dynamic.input_specs[0].shape == ("batch", "sequence")
    longer = {
        "input_ids": np.arange(20, dtype=np.int64).reshape(2, 10) % 40,
        "attention_mask": np.ones((2, 10), np.int64),
    }
    assert _agree_at_batch(module, dynamic.onnx_path, longer) < 1e-4


class TupleAndDict(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor):
        y = self.linear(x)
        return {"logits": y, "aux": (y.relu(), y * 2)}, y.sum(-1)


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_output_names_follow_flatten_convention(tmp_path: Path, exporter: str) -> None:
    result = export_onnx(
        TupleAndDict(),
        tmp_path / "out.onnx",
        input_specs=[TensorSpec("x", (1, 4))],
        options=ExportConfig(exporter=exporter),
    )
    expected = ["output_0.logits", "output_0.aux.0", "output_0.aux.1", "output_1"]
    assert result.output_names == expected
    assert [o.name for o in onnx.load(str(result.onnx_path)).graph.output] == expected
    assert set(result.per_output_error) == set(expected)


class NoOnnxOp(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.svd(x)[1]


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_unexportable_op_names_module_and_op(tmp_path: Path, exporter: str) -> None:
    out = tmp_path / "svd.onnx"
    with pytest.raises(ExportError, match=r"NoOnnxOp.*svd") as info:
        export_onnx(
            NoOnnxOp(),
            out,
            input_specs=[TensorSpec("x", (1, 3, 3))],
            options=ExportConfig(exporter=exporter),
        )
    assert info.value.__cause__ is not None  # the torch error is kept
    assert len(str(info.value)) < 700
    assert not out.exists()


class DataDependent(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return x * 2
        return x - 1


def test_dynamo_failure_points_at_user_code_and_fallback_is_recorded(tmp_path: Path) -> None:
    specs = [TensorSpec("x", (1, 4))]
    with pytest.raises(
        ExportError, match=r"DataDependent.*test_export_onnx.py:\d+ `if x.sum\(\) > 0"
    ):
        export_onnx(DataDependent(), tmp_path / "a.onnx", input_specs=specs)
    result = export_onnx(
        DataDependent(),
        tmp_path / "b.onnx",
        input_specs=specs,
        example_inputs={"x": np.ones((1, 4), np.float32)},
        options=ExportConfig(fallback=True, verify_samples=1),
    )
    assert result.exporter == "torchscript"
    assert result.fallback_reason and result.fallback_reason.startswith("dynamo:")


class Noisy(nn.Module):
    """Exports fine, but ONNX Runtime's random numbers are not torch's."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.rand_like(x)


def test_failed_verification_names_output_and_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "noisy.onnx"
    out.write_bytes(b"previous build")  # an existing file is left untouched
    with pytest.raises(ExportError, match=r"output 'output'.*max abs error .* atol=0\.0001"):
        export_onnx(
            Noisy(),
            out,
            input_specs=[TensorSpec("x", (1, 64))],
            options=ExportConfig(exporter="torchscript"),
        )
    assert out.read_bytes() == b"previous build"
    assert os.listdir(tmp_path) == ["noisy.onnx"]  # no temporary files left behind


def test_unwritable_output_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the output directory should be")
    with pytest.raises(OutputPathError, match="not_a_dir"):
        export_onnx(tiny_resnet(), blocker / "m.onnx", input_specs=IMAGE)


def test_read_only_output_directory(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        with pytest.raises(OutputPathError, match="locked"):
            export_onnx(tiny_resnet(), locked / "m.onnx", input_specs=IMAGE)
    finally:
        locked.chmod(0o700)


class SpatialMean(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


def test_requested_opset_the_dynamo_exporter_cannot_reach_is_an_error(tmp_path: Path) -> None:
    out = tmp_path / "old.onnx"
    with pytest.raises(ExportError, match="opset 18, not the requested 17"):
        export_onnx(SpatialMean(), out, input_specs=IMAGE, options=ExportConfig(opset=17))
    assert not out.exists()


def test_training_flag_restored_and_bad_inputs_rejected(tmp_path: Path) -> None:
    module = tiny_resnet().train()
    with pytest.raises(ExportError, match=r"Example inputs \['y'\] do not match.*\['x'\]"):
        export_onnx(
            module, tmp_path / "m.onnx", input_specs=IMAGE, example_inputs={"y": np.ones(1)}
        )
    with pytest.raises(ExportError, match="No input specs"):
        export_onnx(module, tmp_path / "m.onnx")
    assert module.training


@pytest.mark.slow
def test_exported_program_with_positional_inputs(tmp_path: Path) -> None:
    module = tiny_resnet()
    batch = torch.export.Dim("batch")
    program = torch.export.export(module, (torch.randn(2, 3, 8, 8),), dynamic_shapes=({0: batch},))
    specs = [TensorSpec("x", ("batch", 3, 8, 8))]
    result = export_onnx(program, tmp_path / "ep.onnx", input_specs=specs)
    assert result.input_specs == specs  # torch.export's symbol renamed to "batch"
    assert result.verify_batch_size == 2 and result.max_abs_error < 1e-4
    with pytest.raises(ExportError, match="positional inputs needs input_specs"):
        export_onnx(program, tmp_path / "ep2.onnx")
