import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from nnship.core.errors import CalibrationError
from nnship.quantize import ExcludeConfig, get_profile
from nnship.quantize.placement import ensure_node_names, plan_placement

ORT = get_profile("onnxruntime")


def _graph() -> onnx.ModelProto:
    """x -> Gemm(W) -> h ; h x y -> MatMul (non-constant B) ; mask -> Mul(big) -> bias;
    h + bias -> Add."""
    w = numpy_helper.from_array(np.eye(4, dtype=np.float32), "W")
    big = numpy_helper.from_array(np.array(-3.4e38, dtype=np.float32), "big")
    nodes = [
        helper.make_node("Gemm", ["x", "W"], ["h"], name="fc"),
        helper.make_node("MatMul", ["h", "y"], ["p"], name="mm"),
        helper.make_node("Mul", ["attention_mask", "big"], ["bias"], name="mk"),
        helper.make_node("Add", ["h", "bias"], ["s"], name="add"),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 4]),
            helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [4, 4]),
            helper.make_tensor_value_info("attention_mask", onnx.TensorProto.FLOAT, [2, 4]),
        ],
        [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in ("p", "s", "r")],
        [w, big],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


RANGES = {
    "x": (-1.0, 1.0),
    "h": (-2.0, 2.0),
    "y": (-1.0, 1.0),
    "p": (-3.0, 3.0),
    "bias": (-3.4e38, 0.0),
    "s": (-3.4e38, 2.0),
    "r": (0.0, 2.0),
    "attention_mask": (0.0, 1.0),
}


def _reasons(plan):
    return {n.name: n.reason for n in plan.float_nodes}


def test_rules_give_reasons():
    plan = plan_placement(_graph(), ORT, RANGES)
    reasons = _reasons(plan)
    assert plan.nodes == ["fc", "relu"]
    assert reasons["mm"] == "MatMul with non-constant B"
    assert reasons["mk"] == "Mul with a constant input (bias or scale)"
    assert reasons["add"].startswith("extreme range: attention mask bias 'bias'")


def test_user_exclusion_wins_and_followers_lose_their_producer():
    plan = plan_placement(_graph(), ORT, RANGES, exclude=ExcludeConfig(names=["fc"]))
    reasons = _reasons(plan)
    assert reasons["fc"] == "excluded by user (name)"
    assert reasons["relu"] == "Relu between float tensors (no quantized producer)"
    assert plan.nodes == []


def test_constant_tensor_is_degenerate():
    ranges = dict(RANGES, x=(0.5, 0.5))
    reasons = _reasons(plan_placement(_graph(), ORT, ranges))
    assert reasons["fc"].startswith("degenerate range: tensor 'x' is constant")


def test_missing_range_is_reported():
    ranges = {k: v for k, v in RANGES.items() if k != "x"}
    assert _reasons(plan_placement(_graph(), ORT, ranges))["fc"] == (
        "no calibration range for tensor 'x'"
    )


def test_nan_range_is_an_error_naming_the_tensor():
    with pytest.raises(CalibrationError, match="'h'"):
        plan_placement(_graph(), ORT, dict(RANGES, h=(float("nan"), 1.0)))


def test_table_degenerate_reason_is_used():
    plan = plan_placement(_graph(), ORT, RANGES, degenerate={"x": "constant tensor: zero range"})
    assert _reasons(plan)["fc"] == "degenerate range: tensor 'x' (constant tensor: zero range)"


def test_unnamed_nodes_get_unique_names():
    model = _graph()
    model.graph.node[0].name = ""
    model.graph.node[1].name = "relu"
    names = [n.name for n in ensure_node_names(model).graph.node]
    assert len(set(names)) == len(names) and names[0] == "Gemm_0"
