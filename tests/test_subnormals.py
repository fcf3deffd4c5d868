"""Subnormal float weights are found, flushed to zero in every artifact, and reported.

Regression for issue 9 point 6 (a real detector shipped 10.4% of its weights subnormal and ran
3.2x slower in ONNX Runtime FP32 than with them zeroed).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from nnship.backends.onnxruntime.outputs import run_model
from nnship.onnx.subnormals import flush_subnormals, verify_flush
from nnship.quantize import make_config, quantize
from nnship.sources import ArrayData
from nnship.validate.render.markdown import report_markdown

TINY = np.finfo(np.float32).tiny
RNG = np.random.default_rng(0)


def subnormal_model() -> onnx.ModelProto:
    """Conv (weights 50% subnormal) -> Relu -> Conv 1x1 (one subnormal in a Constant bias)."""
    w1 = RNG.standard_normal((8, 3, 3, 3)).astype(np.float32)
    w1.reshape(-1)[::2] = TINY / 8  # subnormal
    w2 = RNG.standard_normal((4, 8, 1, 1)).astype(np.float32)
    b2 = np.array([0.1, -TINY / 4, 0.2, 0.0], np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu"),
        helper.make_node(
            "Constant", [], ["b2"], value=numpy_helper.from_array(b2, "b2_value"), name="cst"
        ),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["y"], name="conv2"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 8, 8])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def count(model: onnx.ModelProto) -> int:
    return flush_subnormals(model, count_only=True)[1].total


def data(n: int = 8) -> ArrayData:
    return ArrayData({"x": RNG.uniform(0, 1, (n, 3, 8, 8)).astype(np.float32)})


def test_flush_counts_per_tensor_and_leaves_the_input_alone():
    model = subnormal_model()
    flushed, report = flush_subnormals(model)
    assert report.tensors["w1"]["subnormal"] == 108 and report.tensors["w1"]["size"] == 216
    assert report.tensors["b2"]["subnormal"] == 1  # a Constant node's value, by its output
    assert report.total == report.flushed == 109
    assert report.float_weights == 216 + 32 + 4
    assert count(flushed) == 0 and count(model) == 109
    w1 = numpy_helper.to_array(next(i for i in flushed.graph.initializer if i.name == "w1"))
    assert np.count_nonzero(w1.reshape(-1)[::2]) == 0  # flushed to zero, nothing else touched
    original = numpy_helper.to_array(model.graph.initializer[0])
    assert np.array_equal(w1.reshape(-1)[1::2], original.reshape(-1)[1::2])
    onnx.checker.check_model(flushed, full_check=True)
    assert "109 of 252 float weights" in report.describe()


def test_flush_changes_no_output_on_data():
    model = subnormal_model()
    flushed, report = flush_subnormals(model)
    samples = data(4)
    diff = verify_flush(model, flushed, report, lambda m: run_model(m, samples).arrays)
    assert diff == report.max_abs_diff and diff < 1e-30
    assert report.verified_samples == 4


def test_quantize_scales_stay_untouched():
    # A (pathological) subnormal Q/DQ scale would become 0 and change the model's meaning.
    scale = numpy_helper.from_array(np.array(TINY / 2, np.float32), "s")
    zp = numpy_helper.from_array(np.array(0, np.int8), "z")
    graph = helper.make_graph(
        [
            helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
            helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"]),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        [scale, zp],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    flushed, report = flush_subnormals(model)
    assert report.total == 1 and report.flushed == 0
    assert numpy_helper.to_array(flushed.graph.initializer[0]) == TINY / 2


@pytest.mark.parametrize("precision", ["int8", "fp16", "dynamic-int8"])
def test_quantized_artifacts_carry_no_subnormals(tmp_path, precision):
    src = tmp_path / "m.onnx"
    onnx.save(subnormal_model(), str(src))
    cfg = make_config(precisions=[precision], method="minmax")
    calib = data(16)
    result = quantize(src, tmp_path / f"m.{precision}.onnx", cfg, calib_data=calib)
    out = onnx.load(str(result.path))
    assert count(out) == 0
    info = result.details["subnormals"]
    assert info["total"] == 109 and info["tensors"]["w1"]["subnormal"] == 108
    assert info["max_abs_diff"] is not None and info["max_abs_diff"] < 1e-30
    assert "flushed to zero" in info["summary"]


def test_onnxruntime_artifact_is_flushed_and_says_so(tmp_path):
    from nnship.backends.onnxruntime import OnnxRuntimeBackend

    src = tmp_path / "m.onnx"
    onnx.save(subnormal_model(), str(src))
    before = src.read_bytes()
    artifact = OnnxRuntimeBackend().compile(src, tmp_path)  # same folder: must not overwrite
    assert src.read_bytes() == before
    assert artifact.path != src and count(onnx.load(str(artifact.path))) == 0
    assert artifact.metadata["subnormals"]["flushed"] == 109
    assert "subnormal weights flushed to zero" in artifact.metadata["notes"][0]
    x = RNG.uniform(0, 1, (2, 3, 8, 8)).astype(np.float32)

    def run(path):  # noqa: ANN001, ANN202
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {"x": x})[0]

    np.testing.assert_allclose(run(artifact.path), run(src), rtol=0, atol=1e-30)


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="openvino missing")
def test_openvino_ir_is_flushed_and_the_report_row_says_so(tmp_path):
    import openvino as ov

    from nnship.backends.onnxruntime import OnnxRuntimeRunner
    from nnship.backends.openvino import OpenVinoBackend
    from nnship.validate import validate

    src = tmp_path / "m.onnx"
    onnx.save(subnormal_model(), str(src))
    artifact = OpenVinoBackend().compile(src, tmp_path / "ov", threads=1)
    ir = ov.Core().read_model(str(artifact.path))
    for op in ir.get_ops():
        if op.get_type_name() == "Constant" and op.get_element_type() == ov.Type.f32:
            values = op.get_data()
            assert not np.any((values != 0) & (np.abs(values) < TINY)), op.get_friendly_name()
    assert artifact.metadata["subnormals"]["flushed"] == 109
    runner = OpenVinoBackend().load(artifact)
    baseline = OnnxRuntimeRunner(src)
    report = validate(
        baseline, {artifact.label: runner}, data(4), artifacts={artifact.label: artifact}
    )
    runner.close()
    baseline.close()
    row = report.row(artifact.label)
    assert any("subnormal weights flushed to zero: 109" in n for n in row.notes)
    assert "subnormal weights flushed" in report_markdown(report)
