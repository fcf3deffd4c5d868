"""`check_tensorrt` / `nnship check --target tensorrt`: each rule on a tiny inline graph."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper
from trt_models import float_graph, qdq_conv, save

from nnship.backends.tensorrt.check import check_tensorrt


def rules(findings) -> set[tuple[str, str]]:
    return {(f.rule, f.node) for f in findings if f.severity == "error"}


def test_clean_symmetric_int8_model_has_no_findings():
    model = qdq_conv()
    onnx.checker.check_model(model, full_check=True)
    # the graph is valid ONNX that a real runtime executes
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    sess.run(None, {"x": np.zeros((2, 3, 8, 8), np.float32)})
    assert check_tensorrt(model) == []


def test_uint8_zero_point_is_named():
    found = rules(check_tensorrt(qdq_conv(act_zp_dtype=np.uint8, act_zp=128)))
    assert ("int8-only", "quant_x") in found
    assert ("int8-only", "dequant_x") in found


def test_missing_zero_point_means_uint8():
    findings = check_tensorrt(qdq_conv(with_act_zp=False))
    hit = [f for f in findings if f.node == "quant_x"]
    assert hit and hit[0].rule == "int8-only" and "UINT8" in hit[0].message


def test_nonzero_zero_point():
    findings = check_tensorrt(qdq_conv(act_zp=3))
    assert ("zero-point-zero", "quant_x") in rules(findings)
    assert any("3" in f.message for f in findings if f.rule == "zero-point-zero")


@pytest.mark.parametrize("bad", [0.0, -0.5, np.inf, np.nan])
def test_weight_scales_positive_and_finite(bad):
    scales = np.array([0.01, bad, 0.01, 0.01], np.float32)
    found = rules(check_tensorrt(qdq_conv(weight_scales=scales)))
    assert ("scale-positive-finite", "dequant_w") in found


def test_conv_weight_axis_must_be_output_channels():
    # 3 scales on axis 1 (input channels) of a [4, 3, 3, 3] weight: a valid ONNX file, but
    # TensorRT needs per-channel scales on axis 0.
    model = qdq_conv(weight_scales=np.full(3, 0.01, np.float32), weight_axis=1)
    findings = [f for f in check_tensorrt(model) if f.rule == "per-channel-axis"]
    assert [f.node for f in findings] == ["dequant_w"]
    assert "axis 0" in findings[0].message and "conv" in findings[0].message


def test_scale_length_must_match_axis():
    model = qdq_conv(weight_scales=np.full(5, 0.01, np.float32))
    findings = [f for f in check_tensorrt(model) if f.rule == "per-channel-axis"]
    assert findings and "shape [4, 3, 3, 3]" in findings[0].message


def _matmul_qdq(axis: int) -> onnx.ModelProto:
    w = numpy_helper.from_array(np.ones((8, 6), np.int8), "w_q")
    size = 6 if axis == 1 else 8
    inits = [
        w,
        numpy_helper.from_array(np.full(size, 0.1, np.float32), "w_s"),
        numpy_helper.from_array(np.zeros(size, np.int8), "w_z"),
    ]
    nodes = [
        helper.make_node("DequantizeLinear", ["w_q", "w_s", "w_z"], ["w"], name="dq_w", axis=axis),
        helper.make_node("MatMul", ["x", "w"], ["y"], name="mm"),
    ]
    graph = helper.make_graph(
        nodes,
        "mm",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 8])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 6])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_matmul_weights_per_channel_on_last_axis():
    assert check_tensorrt(_matmul_qdq(axis=1)) == []
    found = rules(check_tensorrt(_matmul_qdq(axis=0)))
    assert found == {("per-channel-axis", "dq_w")}


def test_activations_must_be_per_tensor():
    model = float_graph(
        "y = QuantizeLinear(x, s, z)",
        "float[N,3] x",
        "int8[N,3] y",
    )
    model.graph.initializer.extend(
        [
            numpy_helper.from_array(np.full(3, 0.1, np.float32), "s"),
            numpy_helper.from_array(np.zeros(3, np.int8), "z"),
        ]
    )
    model.graph.node[0].attribute.append(helper.make_attribute("axis", 1))
    model.graph.node[0].name = "q_act"
    assert ("per-tensor-activations", "q_act") in rules(check_tensorrt(model))


def test_scale_from_a_graph_input_is_not_constant():
    model = float_graph("y = QuantizeLinear(x, s)", "float[N,3] x, float s", "uint8[N,3] y")
    model.graph.node[0].name = "q"
    assert ("qdq-constant", "q") in rules(check_tensorrt(model))


def test_opset_below_13():
    findings = check_tensorrt(qdq_conv(opset=12))
    assert any(f.rule == "opset" and "12" in f.message for f in findings)


def test_unsupported_and_custom_ops_are_named():
    model = float_graph(
        "d = Det(x)\n y = Relu(d)",
        "float[2,2] x",
        "float y",
    )
    model.graph.node[0].name = "determinant"
    custom = helper.make_node("FusedGemm", ["x", "x"], ["z"], name="fused", domain="com.microsoft")
    model.graph.node.append(custom)
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    findings = [f for f in check_tensorrt(model) if f.rule == "unsupported-op"]
    assert {f.node for f in findings} == {"determinant", "fused"}
    assert any("com.microsoft" in f.message for f in findings)


def test_topk_needs_constant_k_and_resize_cubic_is_rejected():
    model = float_graph(
        "v, i = TopK(x, k)\n r = Resize(x, , scales)",
        "float[1,1,4,4] x, int64[1] k",
        "float[1,1,4,4] v, int64[1,1,4,4] i, float[1,1,8,8] r",
    )
    model.graph.initializer.append(
        numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    )
    model.graph.node[0].name, model.graph.node[1].name = "topk", "resize"
    model.graph.node[1].attribute.append(helper.make_attribute("mode", "cubic"))
    found = rules(check_tensorrt(model))
    assert ("constant-input", "topk") in found
    assert ("attribute", "resize") in found


def test_ops_inside_subgraphs_are_checked():
    then = helper.make_graph(
        [helper.make_node("Det", ["a"], ["o"], name="det_in_branch")],
        "then",
        [],
        [helper.make_tensor_value_info("o", onnx.TensorProto.FLOAT, [])],
    )
    other = helper.make_graph(
        [helper.make_node("Identity", ["b"], ["o2"], name="id")],
        "else",
        [],
        [helper.make_tensor_value_info("o2", onnx.TensorProto.FLOAT, [])],
    )
    node = helper.make_node("If", ["c"], ["y"], name="branch", then_branch=then, else_branch=other)
    graph = helper.make_graph(
        [node],
        "g",
        [
            helper.make_tensor_value_info("c", onnx.TensorProto.BOOL, []),
            helper.make_tensor_value_info("a", onnx.TensorProto.FLOAT, [2, 2]),
            helper.make_tensor_value_info("b", onnx.TensorProto.FLOAT, []),
        ],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert ("unsupported-op", "det_in_branch") in rules(check_tensorrt(model))


def test_double_inputs_warn():
    model = float_graph("y = Relu(x)", "double[N,4] x", "double[N,4] y")
    findings = check_tensorrt(model)
    assert findings and all(f.severity == "warning" and f.rule == "dtype" for f in findings)


def test_onnxruntime_default_qdq_fails_the_check(tmp_path):
    """ORT's default static QDQ (uint8 activations, int32 bias) is what TensorRT rejects."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    model = float_graph(
        "c = Conv(x, w, b)\n y = Relu(c)",
        "float[N,3,8,8] x",
        "float[N,4,8,8] y",
    )
    rng = np.random.default_rng(0)
    model.graph.initializer.extend(
        [
            numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w"),
            numpy_helper.from_array(np.zeros(4, np.float32), "b"),
        ]
    )
    model.graph.node[0].attribute.append(helper.make_attribute("pads", [1, 1, 1, 1]))
    src = save(model, tmp_path / "f.onnx")

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{"x": rng.standard_normal((1, 3, 8, 8)).astype(np.float32)}] * 4)

        def get_next(self):
            return next(self.items, None)

    quantize_static(str(src), str(tmp_path / "q.onnx"), Reader(), quant_format=QuantFormat.QDQ)
    findings = check_tensorrt(tmp_path / "q.onnx")
    kinds = {f.rule for f in findings}
    assert "int8-only" in kinds
    assert any("int32" in f.message and "bias" in f.message for f in findings)


def test_nnship_tensorrt_profile_passes_the_check(tmp_path):
    """nnship's own quantizer, TensorRT profile, produces what the check accepts."""
    quantize_mod = pytest.importorskip("nnship.quantize")
    from nnship.quantize.config import make_config
    from nnship.sources import ArrayData

    model = float_graph(
        "c = Conv(x, w, b)\n r = Relu(c)\n p = GlobalAveragePool(r)\n f = Flatten(p)\n"
        " y = Gemm(f, fw, fb)",
        "float[N,3,8,8] x",
        "float[N,5] y",
    )
    rng = np.random.default_rng(0)
    model.graph.initializer.extend(
        [
            numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w"),
            numpy_helper.from_array(np.zeros(4, np.float32), "b"),
            numpy_helper.from_array(rng.standard_normal((4, 5)).astype(np.float32), "fw"),
            numpy_helper.from_array(np.zeros(5, np.float32), "fb"),
        ]
    )
    for i, node in enumerate(model.graph.node):
        node.name = f"n{i}_{node.op_type}"
    src = save(model, tmp_path / "f.onnx")
    data = ArrayData({"x": rng.standard_normal((16, 3, 8, 8)).astype(np.float32)})
    out = tmp_path / "trt.int8.onnx"
    quantize_mod.quantize(src, out, make_config(profile="tensorrt"), calib_data=data)
    errors = [f for f in check_tensorrt(out) if f.severity == "error"]
    assert errors == []


def test_cli_check_exit_codes_and_json(tmp_path, run_cli):
    good = save(qdq_conv(), tmp_path / "good.onnx")
    bad = save(qdq_conv(act_zp_dtype=np.uint8, act_zp=128), tmp_path / "bad.onnx")
    ok = run_cli("check", "--target", "tensorrt", good)
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout
    report = tmp_path / "findings.json"
    fail = run_cli("check", "--target", "tensorrt", bad, "--json", report)
    assert fail.returncode == 1
    assert "quant_x" in fail.stdout and "int8-only" in fail.stdout
    data = json.loads(report.read_text())
    assert data["ok"] is False and {f["node"] for f in data["findings"]} >= {"quant_x"}
    missing = run_cli("check", "--target", "tensorrt", tmp_path / "nope.onnx")
    assert missing.returncode == 2 and "nope.onnx" in missing.stderr
