"""Empirical bias correction: held-out output means move back to the float model's, the QDQ
model stays valid and integer in ONNX Runtime, biases are stored as the graph stores them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from nnship.calibration import correct_bias
from nnship.core import TensorSpec
from nnship.core.errors import CalibrationError, DataError
from nnship.exporter import ExportConfig, export_onnx
from nnship.quantize import make_config, quantize
from nnship.sources import ArrayData


class DepthwiseNet(nn.Module):
    """Conv -> ReLU6 -> 5x5 depthwise -> ReLU6 -> 1x1 conv without bias -> GAP -> Linear.

    Each depthwise filter has one large tap and 24 small positive taps just under half an
    int8 step of that channel: per-channel weight quantization rounds them all to zero, so
    every depthwise output channel loses a fixed share of its mean (Nagel et al. 2019, 4.2).
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.dw = nn.Conv2d(16, 16, 5, padding=2, groups=16)
        self.pw = nn.Conv2d(16, 8, 1, bias=False)
        self.fc = nn.Linear(8, 6)
        rng = np.random.default_rng(0)
        peak = rng.uniform(0.5, 1.0, size=16)
        taps = peak[:, None] / 127 * rng.uniform(0.40, 0.49, size=(16, 25))
        taps[:, 12] = peak  # the centre tap sets the channel's scale
        with torch.no_grad():
            self.dw.weight.copy_(torch.from_numpy(taps.reshape(16, 1, 5, 5)).float())
            self.stem.bias.fill_(1.0)  # ReLU6 outputs around 1-2: a large E[x] to multiply
            self.pw.weight.normal_(0.0, 0.5)
            self.fc.weight.normal_(0.0, 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.relu6(self.stem(x))
        y = nn.functional.relu6(self.dw(y))
        return self.fc(self.pw(y).mean((2, 3)))


def _images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.5, 1.0, (n, 3, 12, 12)).astype(np.float32)


def _run(model: onnx.ModelProto, x: np.ndarray, optimized: Path | None = None) -> np.ndarray:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = 1
    if optimized is not None:
        options.optimized_model_filepath = str(optimized)
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """(float model, QDQ model, corrected model, report), quantized by nnship with minmax."""
    torch.manual_seed(0)
    tmp = tmp_path_factory.mktemp("bias")
    export_onnx(
        DepthwiseNet().eval(),
        tmp / "fp32.onnx",
        input_specs=[TensorSpec("x", ("batch", 3, 12, 12))],
        options=ExportConfig(exporter="torchscript"),
    )
    config = make_config(method="minmax", equalization="off", smoothing="off")
    quantize(
        tmp / "fp32.onnx", tmp / "int8.onnx", config, calib_data=ArrayData({"x": _images(64, 1)})
    )
    fmodel, qmodel = onnx.load(str(tmp / "fp32.onnx")), onnx.load(str(tmp / "int8.onnx"))
    corrected, report = correct_bias(
        tmp / "fp32.onnx", tmp / "int8.onnx", ArrayData({"x": _images(64, 1)}), batch_size=16
    )
    return fmodel, qmodel, corrected, report


def test_held_out_output_means_move_to_the_float_ones(models):
    fmodel, qmodel, corrected, _ = models
    x = _images(96, 2)  # not the correction data
    ref, before, after = _run(fmodel, x), _run(qmodel, x), _run(corrected, x)
    shift_before = np.abs((before - ref).mean(0))
    shift_after = np.abs((after - ref).mean(0))
    assert shift_before.max() > 0.05  # the model really has a quantization bias to remove
    assert np.linalg.norm(shift_after) < 0.2 * np.linalg.norm(shift_before)
    assert np.abs(after - ref).mean() < 0.5 * np.abs(before - ref).mean()

    def cosine(a: np.ndarray) -> float:
        return float((a * ref).sum() / np.linalg.norm(a) / np.linalg.norm(ref))

    assert cosine(after) > cosine(before)


def _op_counts(model: onnx.ModelProto, tmp: Path) -> dict[str, int]:
    path = tmp / "optimized.onnx"
    _run(model, _images(2, 3), optimized=path)
    counts: dict[str, int] = {}
    for node in onnx.load(str(path)).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def test_corrected_model_is_valid_and_still_runs_integer_kernels(models, tmp_path):
    _, qmodel, corrected, _ = models
    onnx.checker.check_model(corrected, full_check=True)
    before, after = _op_counts(qmodel, tmp_path), _op_counts(corrected, tmp_path)
    assert before.get("QLinearConv", 0) == 3
    assert after.get("QLinearConv", 0) == before["QLinearConv"]
    assert "Conv" not in after and "FusedConv" not in after

    def count(model: onnx.ModelProto, op: str) -> int:
        return sum(n.op_type == op for n in model.graph.node)

    assert count(corrected, "QuantizeLinear") == count(qmodel, "QuantizeLinear")
    # one new DequantizeLinear: the int32 bias created for the bias-free 1x1 conv
    assert count(corrected, "DequantizeLinear") == count(qmodel, "DequantizeLinear") + 1


def _bias_of(model: onnx.ModelProto, name: str) -> tuple[np.ndarray, np.ndarray]:
    nodes = {n.output[0]: n for n in model.graph.node}
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    layer = next(n for n in model.graph.node if n.name == name)
    dq = nodes[layer.input[2]]
    assert dq.op_type == "DequantizeLinear"
    return inits[dq.input[0]], inits[dq.input[1]]


def test_int32_biases_change_in_integer_form_with_the_same_scale(models):
    _, qmodel, corrected, report = models
    dw = next(x for x in report.layers if x.channels == 16 and x.level == 1)
    old_q, old_scale = _bias_of(qmodel, dw.name)
    new_q, new_scale = _bias_of(corrected, dw.name)
    assert new_q.dtype == np.int32 and np.array_equal(new_scale, old_scale)
    applied = (new_q.astype(np.float64) - old_q) * new_scale
    assert np.all(applied > 0)  # the rounded-away taps were all positive: means were too low
    assert np.abs(applied).mean() == pytest.approx(dw.mean_abs_correction)


def test_report_lists_layers_in_order_with_their_bias_storage(models):
    _, _, corrected, report = models
    assert [(x.op_type, x.channels, x.level) for x in report.layers] == [
        ("Conv", 16, 0),
        ("Conv", 16, 1),
        ("Conv", 8, 2),
        ("Gemm", 6, 3),
    ]
    assert [x.bias for x in report.layers] == ["int32", "int32", "created int32", "int32"]
    assert report.passes == 5 and report.samples == 64 and report.skipped == []
    data = json.loads(json.dumps(report.to_dict()))
    assert data["applied"] and data["layers"][1]["mean_abs_correction"] > 0.01
    _, scale = _bias_of(corrected, report.layers[2].name)
    assert scale.shape == (8,)  # input scale x per-channel weight scale


def test_same_inputs_give_the_same_model_and_inputs_are_untouched(models, tmp_path):
    fmodel, qmodel, corrected, _ = models
    before = qmodel.SerializeToString()
    again, _ = correct_bias(fmodel, qmodel, ArrayData({"x": _images(64, 1)}), batch_size=16)
    assert qmodel.SerializeToString() == before
    assert again.SerializeToString() == corrected.SerializeToString()


def test_bad_inputs_raise_errors_naming_them(models):
    fmodel, qmodel, _, _ = models
    data = ArrayData({"x": _images(4, 1)})
    with pytest.raises(CalibrationError, match="float_model"):
        correct_bias(qmodel, qmodel, data)
    with pytest.raises(CalibrationError, match="quant_model"):
        correct_bias(fmodel, fmodel, data)
    with pytest.raises(CalibrationError, match="batch_size"):
        correct_bias(fmodel, qmodel, data, batch_size=0)
    with pytest.raises(DataError, match="'x'"):
        correct_bias(fmodel, qmodel, ArrayData({"x": _images(4, 1)[:, :2]}))
    with pytest.raises(DataError, match="image"):
        correct_bias(fmodel, qmodel, ArrayData({"image": _images(4, 1)}))


# -- hand-built QDQ graphs: shared float biases, Gemm's beta ---------------------------------
_OPSET = [helper.make_opsetid("", 18)]


def _quantized_weight(name: str, w: np.ndarray) -> tuple[list, onnx.NodeProto]:
    scale = (np.abs(w).reshape(len(w), -1).max(1) / 127).astype(np.float32)
    q = np.clip(np.rint(w / scale.reshape(-1, *[1] * (w.ndim - 1))), -127, 127).astype(np.int8)
    inits = [
        numpy_helper.from_array(q, f"{name}_q"),
        numpy_helper.from_array(scale, f"{name}_s"),
        numpy_helper.from_array(np.zeros(len(w), np.int8), f"{name}_z"),
    ]
    node = helper.make_node(
        "DequantizeLinear", [f"{name}_q", f"{name}_s", f"{name}_z"], [f"{name}_dq"], axis=0
    )
    return inits, node


def _pair(nodes_f: list, nodes_q: list, inits_f: list, inits_q: list, outputs: dict):
    """A float model and its QDQ twin (input quantized to uint8, weights to int8)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 6, 6])
    outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, s) for o, s in outputs.items()]
    fmodel = helper.make_model(
        helper.make_graph(nodes_f, "f", [x], outs, inits_f), opset_imports=_OPSET, ir_version=10
    )
    act = [
        numpy_helper.from_array(np.array(0.04, np.float32), "xs"),
        numpy_helper.from_array(np.array(100, np.uint8), "xz"),
    ]
    qdq = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
    ]
    qmodel = helper.make_model(
        helper.make_graph(qdq + nodes_q, "q", [x], outs, act + inits_q),
        opset_imports=_OPSET,
        ir_version=10,
    )
    onnx.checker.check_model(fmodel, full_check=True)
    onnx.checker.check_model(qmodel, full_check=True)
    return fmodel, qmodel


def test_a_shared_float_bias_gets_a_private_copy_per_layer():
    rng = np.random.default_rng(0)
    w1, w2 = rng.normal(size=(5, 4, 3, 3)), rng.normal(size=(5, 4, 1, 1))
    w1, w2 = w1.astype(np.float32), w2.astype(np.float32)
    bias = numpy_helper.from_array(rng.normal(size=5).astype(np.float32), "b")
    q1, dq1 = _quantized_weight("w1", w1)
    q2, dq2 = _quantized_weight("w2", w2)
    fmodel, qmodel = _pair(
        [helper.make_node("Conv", ["x", "w1", "b"], ["y1"], name="c1"),
         helper.make_node("Conv", ["x", "w2", "b"], ["y2"], name="c2")],
        [dq1, dq2, helper.make_node("Conv", ["xd", "w1_dq", "b"], ["y1"], name="c1"),
         helper.make_node("Conv", ["xd", "w2_dq", "b"], ["y2"], name="c2")],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2"), bias],
        [*q1, *q2, bias],
        {"y1": ["N", 5, 4, 4], "y2": ["N", 5, 6, 6]},
    )  # fmt: skip
    x = np.random.default_rng(1).normal(0.3, 1.0, (32, 4, 6, 6)).astype(np.float32)
    corrected, report = correct_bias(fmodel, qmodel, ArrayData({"x": x}))
    assert [(x.name, x.bias, x.level) for x in report.layers] == [
        ("c1", "float", 0),
        ("c2", "float", 0),
    ]
    assert report.passes == 2
    c1, c2 = (n for n in corrected.graph.node if n.op_type == "Conv")
    assert c1.input[2] != c2.input[2]  # each layer got its own corrected copy
    ref, out = _run_all(fmodel, x), _run_all(corrected, x)
    for name in ("y1", "y2"):  # a single layer is corrected exactly on its own data
        diff = (out[name] - ref[name]).mean(axis=(0, 2, 3))
        assert np.abs(diff).max() < 1e-4


def test_gemm_bias_is_divided_by_beta():
    rng = np.random.default_rng(2)
    w = rng.normal(size=(3, 144)).astype(np.float32)
    c = numpy_helper.from_array(rng.normal(size=3).astype(np.float32), "c")
    qw, dqw = _quantized_weight("w", w)
    shape = numpy_helper.from_array(np.array([0, -1], np.int64), "shape")
    fmodel, qmodel = _pair(
        [helper.make_node("Reshape", ["x", "shape"], ["flat"]),
         helper.make_node("Gemm", ["flat", "w", "c"], ["y"], name="fc", transB=1, beta=2.0)],
        [dqw, helper.make_node("Reshape", ["xd", "shape"], ["flat"]),
         helper.make_node("Gemm", ["flat", "w_dq", "c"], ["y"], name="fc", transB=1, beta=2.0)],
        [numpy_helper.from_array(w, "w"), c, shape],
        [*qw, c, shape],
        {"y": ["N", 3]},
    )  # fmt: skip
    x = np.random.default_rng(3).normal(0.3, 1.0, (32, 4, 6, 6)).astype(np.float32)
    corrected, report = correct_bias(fmodel, qmodel, ArrayData({"x": x}), max_samples=20)
    assert report.samples == 20 and report.layers[0].bias == "float"
    ref, out = _run_all(fmodel, x[:20]), _run_all(corrected, x[:20])
    assert np.abs((out["y"] - ref["y"]).mean(0)).max() < 1e-4


def _run_all(model: onnx.ModelProto, x: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {"x": x})))
