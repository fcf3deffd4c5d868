import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import MinMaxTable
from onnx import numpy_helper

from nnship.core import DataSource, LabeledBatch
from nnship.core.errors import CalibrationError, DataError, QuantizationError
from nnship.quantize import QuantizeResult, make_config, quantize
from nnship.quantize.pipeline import preprocess
from nnship.sources import ArrayData


def _run(path, inputs):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, inputs)[0]


def _cosine(a, b):
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def cnn_table(cnn_path, cnn_data, tmp_path_factory):
    pre = tmp_path_factory.mktemp("pre") / "pre.onnx"
    onnx.save(preprocess(onnx.load(str(cnn_path))), str(pre))
    return MinMaxTable(pre, cnn_data)


def _qdq_params(model):
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    out = []
    for node in model.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") and len(node.input) > 2:
            out.append((node, inits[node.input[1]], inits[node.input[2]]))
    return out


@pytest.mark.parametrize("profile", ["onnxruntime", "openvino", "tensorrt"])
def test_every_profile_writes_valid_qdq_close_to_float(
    profile, cnn_path, cnn_data, cnn_table, tmp_path
):
    out = tmp_path / "q.onnx"
    res = quantize(cnn_path, out, make_config(profile=profile, method="minmax"), table=cnn_table)
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    assert any(n.op_type == "DequantizeLinear" for n in model.graph.node)
    assert res.quantized_nodes
    x = {"x": cnn_data["x"][:8]}
    assert _cosine(_run(cnn_path, x), _run(out, x)) > 0.99
    json.dumps(res.to_dict())  # JSON-serialisable


def test_tensorrt_profile_is_symmetric_with_zero_points_zero(cnn_path, cnn_table, tmp_path):
    out = tmp_path / "trt.onnx"
    quantize(cnn_path, out, make_config(profile="tensorrt"), table=cnn_table)
    model = onnx.load(str(out))
    params = _qdq_params(model)
    assert params
    for node, _scale, zp in params:
        assert zp.dtype in (np.int8, np.int32), node.name  # int32: Conv/Gemm biases
        assert not zp.any(), f"{node.name} has a non-zero zero point"
    assert any(zp.dtype == np.int8 and s.ndim == 0 for _, s, zp in params)
    conv_weight_scales = [s for n, s, _ in params if s.ndim == 1 and s.size > 1]
    assert conv_weight_scales, "weights must be per-channel"


def test_onnxruntime_profile_is_u8s8_and_fuses_to_integer_kernels(cnn_path, cnn_table, tmp_path):
    out = tmp_path / "ort.onnx"
    quantize(cnn_path, out, make_config(profile="onnxruntime"), table=cnn_table)
    model = onnx.load(str(out))
    kinds = {zp.dtype for _, s, zp in _qdq_params(model) if s.ndim == 0}
    assert kinds == {np.dtype(np.uint8)}
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(tmp_path / "opt.onnx")
    ort.InferenceSession(str(out), options, providers=["CPUExecutionProvider"])
    fused = {n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node}
    assert "QLinearConv" in fused and "QLinearAdd" in fused


def test_openvino_runs_the_openvino_profile(cnn_path, cnn_data, cnn_table, tmp_path):
    ov = pytest.importorskip("openvino")
    out = tmp_path / "ov.onnx"
    quantize(cnn_path, out, make_config(profile="openvino"), table=cnn_table)
    compiled = ov.Core().compile_model(str(out), "CPU")
    x = cnn_data["x"][:4]
    got = compiled({"x": x})[compiled.output(0)]
    assert _cosine(_run(cnn_path, {"x": x}), got) > 0.99


@pytest.mark.parametrize("method", ["minmax", "percentile", "entropy", "mse"])
def test_each_method_with_real_calibration(method, cnn_path, cnn_data, tmp_path):
    data = ArrayData(cnn_data)
    res = quantize(
        cnn_path, tmp_path / "q.onnx", make_config(method=method), calib_data=data, eval_data=data
    )
    assert res.method == method
    assert res.metrics["cosine"] > 0.99
    if method != "minmax":
        assert res.details["method_changed_tensors"] > 0


def test_mask_bias_stays_float_with_reason(encoder_path, encoder_data, tmp_path):
    data = ArrayData(encoder_data)
    res = quantize(
        encoder_path, tmp_path / "e.onnx", make_config(), calib_data=data, eval_data=data
    )
    reasons = [n.reason for n in res.float_nodes]
    assert any(r.startswith("extreme range: attention mask bias") for r in reasons)
    assert res.metrics["cosine"] > 0.99
    ops = {
        n.op_type
        for n in onnx.load(str(tmp_path / "e.onnx")).graph.node
        if n.name in res.quantized_nodes
    }
    assert ops == {"MatMul"}


def test_result_round_trips_through_json(cnn_path, cnn_table, tmp_path):
    res = quantize(cnn_path, tmp_path / "q.onnx", make_config(), table=cnn_table)
    again = QuantizeResult.from_dict(json.loads(json.dumps(res.to_dict())))
    assert again.float_nodes == res.float_nodes and again.path == res.path


def test_method_that_changes_nothing_is_not_claimed(cnn_path, cnn_table, tmp_path):
    class SameAsMinMax:
        def ranges(self, method="minmax", **params):
            return cnn_table.ranges("minmax")

        def degenerate_tensors(self):
            return {}

    res = quantize(
        cnn_path, tmp_path / "q.onnx", make_config(method="entropy"), table=SameAsMinMax()
    )
    assert res.details["method_changed_tensors"] == 0
    assert any("in effect minmax" in w for w in res.warnings)


# -- bad input -------------------------------------------------------------------------------
def test_already_quantized_model_is_refused(cnn_path, cnn_table, tmp_path):
    first = tmp_path / "q.onnx"
    quantize(cnn_path, first, make_config(), table=cnn_table)
    with pytest.raises(QuantizationError, match="already quantized"):
        quantize(first, tmp_path / "q2.onnx", make_config(), table=cnn_table)
    assert not (tmp_path / "q2.onnx").exists()


def test_mismatched_calibration_data_names_tensor_and_shapes(cnn_path, tmp_path):
    bad = ArrayData({"x": np.zeros((4, 3, 16), np.float32)})
    with pytest.raises(DataError, match=r"'x'.*\[batch, 3, 16, 16\].*\(4, 3, 16\)|'x'.*rank"):
        quantize(cnn_path, tmp_path / "q.onnx", make_config(), calib_data=bad)
    assert not (tmp_path / "q.onnx").exists()


class _NaNData(DataSource):
    num_samples = 4
    input_names = ["x"]

    def iter_batches(self, batch_size=1):
        x = np.ones((4, 3, 16, 16), np.float32)
        x[0, 0, 0, 0] = np.nan
        yield LabeledBatch({"x": x})


def test_nan_in_data_is_an_error(cnn_path, tmp_path):
    with pytest.raises(DataError, match="NaN"):
        quantize(cnn_path, tmp_path / "q.onnx", make_config(), calib_data=_NaNData())


def test_nan_statistic_is_an_error(cnn_path, cnn_table, tmp_path):
    class NaNTable:
        def ranges(self, method="minmax", **params):
            out = cnn_table.ranges("minmax")
            out[next(iter(out))] = (float("nan"), 1.0)
            return out

        def degenerate_tensors(self):
            return {}

    with pytest.raises(CalibrationError, match="NaN"):
        quantize(cnn_path, tmp_path / "q.onnx", make_config(), table=NaNTable())


def test_few_samples_warn_with_the_number(cnn_path, cnn_data, tmp_path):
    few = ArrayData({"x": cnn_data["x"][:5]})
    res = quantize(cnn_path, tmp_path / "q.onnx", make_config(), calib_data=few)
    assert any("only 5 calibration sample" in w for w in res.warnings)


def test_int8_without_calibration_is_refused(cnn_path, tmp_path):
    with pytest.raises(QuantizationError, match="--calib"):
        quantize(cnn_path, tmp_path / "q.onnx", make_config())


def test_missing_model_file(tmp_path):
    from nnship.core.errors import OnnxModelError

    with pytest.raises(OnnxModelError, match="does not exist"):
        quantize(
            Path(tmp_path / "nope.onnx"), tmp_path / "q.onnx", make_config(precisions=["fp16"])
        )
