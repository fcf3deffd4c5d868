"""OnnxRuntimeRunner and OnnxRuntimeBackend on tiny inline graphs (real ONNX Runtime)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import parser

from nnship.backends import get_backend
from nnship.backends.onnxruntime import OnnxRuntimeBackend, OnnxRuntimeRunner
from nnship.core import TensorSpec
from nnship.core.errors import BackendError, DataError, OnnxModelError

# y = relu(x @ W + b) then an identity-like chain ORT's basic optimizer folds away
_TEXT = """
<ir_version: 8, opset_import: ["" : 18]>
agraph (float[batch, 4] x, int64[batch] ids) => (float[batch, 3] y, int64[batch] ids_out) <
    float[4, 3] W = {1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1},
    float[3] b = {0.5, -0.5, 0}
> {
    mm = MatMul(x, W)
    pre = Add(mm, b)
    y = Relu(pre)
    ids_out = Identity(ids)
}
"""


@pytest.fixture()
def model_path(tmp_path: Path) -> Path:
    model = parser.parse_model(_TEXT)
    onnx.checker.check_model(model, full_check=True)
    path = tmp_path / "tiny.onnx"
    onnx.save(model, str(path))
    return path


def _batch(n: int = 2) -> dict[str, np.ndarray]:
    x = np.arange(n * 4, dtype=np.float32).reshape(n, 4) - 3
    return {"x": x, "ids": np.arange(n, dtype=np.int64)}


def test_runner_specs_outputs_and_results(model_path: Path) -> None:
    with OnnxRuntimeRunner(model_path) as runner:
        assert runner.name == "onnxruntime:cpu"
        assert runner.input_specs == [
            TensorSpec("x", ("batch", 4), "float32"),
            TensorSpec("ids", ("batch",), "int64"),
        ]
        assert runner.output_names == ["y", "ids_out"]
        batch = _batch(3)
        out = runner.run(batch)
        w = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]], np.float32)
        np.testing.assert_allclose(out["y"], np.maximum(batch["x"] @ w + [0.5, -0.5, 0], 0))
        np.testing.assert_array_equal(out["ids_out"], batch["ids"])
        with pytest.raises(DataError, match="'x'.*dtype float32, got float64"):
            runner.run({"x": batch["x"].astype(np.float64), "ids": batch["ids"]})
    with pytest.raises(BackendError, match="closed"):
        runner.run(_batch())


def test_threads_and_optimization_level_reach_the_session(model_path: Path) -> None:
    runner = OnnxRuntimeRunner(model_path, threads=1, graph_optimization="basic")
    options = runner.session.get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    parallel = OnnxRuntimeRunner(model_path, inter_op_threads=2, graph_optimization="disable")
    options = parallel.session.get_session_options()
    assert options.execution_mode == ort.ExecutionMode.ORT_PARALLEL
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    with pytest.raises(BackendError, match="graph_optimization 'max'.*disabled, basic"):
        OnnxRuntimeRunner(model_path, graph_optimization="max")
    with pytest.raises(BackendError, match="threads must be >= 1"):
        OnnxRuntimeRunner(model_path, threads=0)


def test_optimized_model_is_saved_atomically(model_path: Path, tmp_path: Path) -> None:
    optimized = tmp_path / "out" / "tiny.opt.onnx"
    OnnxRuntimeRunner(model_path, optimized_model_path=optimized).close()
    saved = onnx.load(str(optimized))
    assert len(saved.graph.node) < 4  # MatMul+Add fused (Gemm/FusedMatMul)
    assert sorted(os.listdir(optimized.parent)) == ["tiny.opt.onnx"]
    with OnnxRuntimeRunner(optimized, graph_optimization="disabled") as again:
        with OnnxRuntimeRunner(model_path) as original:
            batch = _batch()
            np.testing.assert_allclose(again.run(batch)["y"], original.run(batch)["y"])


def test_absent_provider_lists_available(model_path: Path) -> None:
    absent = next(
        p
        for p in ("CUDAExecutionProvider", "TensorrtExecutionProvider", "DmlExecutionProvider")
        if p not in ort.get_available_providers()
    )
    with pytest.raises(BackendError, match=rf"'{absent}' is not available.*CPUExecutionProvider"):
        OnnxRuntimeRunner(model_path, providers=[absent])
    runner = OnnxRuntimeRunner(model_path, providers=["cpu"])
    assert runner.session.get_providers() == ["CPUExecutionProvider"]


def test_extra_outputs_expose_intermediate_tensors(model_path: Path) -> None:
    runner = OnnxRuntimeRunner(model_path, extra_outputs=["pre"])
    assert runner.output_names == ["y", "ids_out", "pre"]
    out = runner.run(_batch())
    np.testing.assert_allclose(out["y"], np.maximum(out["pre"], 0))


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(OnnxModelError, match="does not exist"):
        OnnxRuntimeRunner(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(BackendError, match="bad.onnx"):
        OnnxRuntimeRunner(bad)


def test_backend_compile_and_load(model_path: Path, tmp_path: Path) -> None:
    backend = get_backend("ort")
    assert isinstance(backend, OnnxRuntimeBackend)
    artifact = backend.compile(model_path, tmp_path / "art", threads=1)
    assert artifact.label == "onnxruntime/fp32" and artifact.device == "cpu"
    assert [f.name for f in artifact.files] == ["tiny.onnx", "tiny.ort.onnx"]
    assert all(f.is_file() for f in artifact.files)
    from nnship.core.fileio import sha256_file

    assert artifact.source_hashes == {"tiny.onnx": sha256_file(model_path)}
    assert artifact.metadata["threads"] == 1 and artifact.metadata["graph_optimization"] == "all"
    with backend.load(artifact) as runner:
        assert runner.session.get_session_options().intra_op_num_threads == 1
        expected = runner.run(_batch())
    with backend.load(artifact, use_optimized=True, threads=2) as fast:
        np.testing.assert_allclose(fast.run(_batch())["y"], expected["y"])
    with backend.load(artifact.path) as by_path:
        assert by_path.output_names == ["y", "ids_out"]


def test_backend_compile_rejections(model_path: Path, tmp_path: Path) -> None:
    backend = OnnxRuntimeBackend()
    with pytest.raises(BackendError, match="no quantized ops.*int8"):
        backend.compile(model_path, tmp_path / "a", precision="int8")
    with pytest.raises(BackendError, match="precision 'int4'"):
        backend.compile(model_path, tmp_path / "a", precision="int4")
    with pytest.raises(BackendError, match=r"option\(s\) \['device'\]"):
        backend.compile(model_path, tmp_path / "a", device="GPU")
