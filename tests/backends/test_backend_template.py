"""`Backend.compile` is a template method (guards in the base, `_compile_impl` per backend) and
`Runner.run` refuses a closed runner with a user error, for every backend alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from nnship.backends import (
    canonical_backend,
    check_precision_supported,
    get_backend,
    precisions_of,
)
from nnship.backends.compile import open_artifact
from nnship.backends.config import OnnxRuntimeOptions
from nnship.core import Artifact, Backend, CompileInputs
from nnship.core.errors import BackendError


@pytest.fixture
def relu_onnx(tmp_path: Path) -> Path:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "relu",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["batch", 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    path = tmp_path / "relu.onnx"
    onnx.save(model, str(path))
    return path


class _Recording(Backend):
    """A backend whose impl records what the template handed it."""

    name = "recording"
    options_type = OnnxRuntimeOptions
    artifact_file = "artifact.json"

    def __init__(self) -> None:
        self.seen: dict = {}

    def _compile_impl(self, onnx_path, out_dir, options, *, precision, inputs):
        self.seen = {"options": options, "precision": precision, "inputs": inputs}
        out = out_dir / "model.bin"
        out.write_bytes(b"x")
        return Artifact(path=out, backend=self.name, files=[out])

    def load(self, artifact, **options):  # pragma: no cover - not used
        raise NotImplementedError


def test_template_validates_options_and_writes_marker_and_hashes(relu_onnx, tmp_path):
    backend = _Recording()
    artifact = backend.compile(relu_onnx, tmp_path / "out", threads=2)
    assert isinstance(backend.seen["options"], OnnxRuntimeOptions)
    assert backend.seen["options"].threads == 2
    assert backend.seen["inputs"] == CompileInputs()
    assert list(artifact.source_hashes) == [str(relu_onnx)]
    assert "nnship_version" in artifact.metadata
    marker = tmp_path / "out" / "artifact.json"
    assert marker.is_file() and marker in artifact.files
    assert Artifact.from_dict(__import__("json").loads(marker.read_text())).path == artifact.path


def test_template_guards_run_before_the_backend(relu_onnx, tmp_path):
    backend = _Recording()
    with pytest.raises(BackendError, match="missing.onnx"):
        backend.compile(tmp_path / "missing.onnx", tmp_path / "a")
    with pytest.raises(BackendError, match="precision 'int4'"):
        backend.compile(relu_onnx, tmp_path / "a", precision="int4")
    with pytest.raises(BackendError, match=r"option\(s\) \['device'\]"):
        backend.compile(relu_onnx, tmp_path / "a", device="GPU")
    with pytest.raises(BackendError, match="OnnxRuntimeOptions"):
        backend.compile(relu_onnx, tmp_path / "a", {"threads": 1})
    assert backend.seen == {}


def test_every_backend_uses_the_template():
    for name in ("onnxruntime", "openvino", "tensorrt"):
        cls = type(get_backend(name))
        assert "compile" not in vars(cls), name
        assert "_compile_impl" in vars(cls), name


def test_aliases_resolve_in_one_place():
    assert canonical_backend("ORT") == "onnxruntime" and canonical_backend("ov") == "openvino"
    assert canonical_backend("TensorRT") == "tensorrt"
    with pytest.raises(BackendError, match="Unknown backend 'tflite'"):
        canonical_backend("tflite")


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_closed_runner_raises_a_user_error(backend, relu_onnx, tmp_path):
    if backend == "openvino":
        pytest.importorskip("openvino")
    artifact = get_backend(backend).compile(relu_onnx, tmp_path / backend)
    runner = open_artifact(artifact)
    x = np.ones((1, 4), np.float32)
    assert runner.run({"x": x})["y"].shape == (1, 4)
    runner.close()
    runner.close()  # idempotent
    assert runner.closed
    with pytest.raises(BackendError, match="closed"):
        runner.run({"x": x})


def test_each_backend_says_which_precisions_it_runs():
    assert precisions_of("onnxruntime") == ("fp32", "int8", "fp16", "dynamic-int8")
    assert precisions_of("ov") == ("fp32", "int8", "fp16", "bf16")
    assert precisions_of("tensorrt") == ("fp32", "int8", "fp16")


def test_a_precision_the_backend_never_runs_is_refused_by_the_template():
    with pytest.raises(BackendError, match="onnxruntime does not run bf16 models"):
        check_precision_supported("onnxruntime", "bf16")
    check_precision_supported("onnxruntime", "int8")  # no machine check for ONNX Runtime
