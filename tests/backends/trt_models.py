"""Tiny ONNX graphs built inline for the TensorRT tests (no torch, no export)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def qdq_conv(
    *,
    act_zp_dtype=np.int8,
    act_zp: int = 0,
    act_scale: float = 0.05,
    weight_scales: np.ndarray | None = None,
    weight_axis: int = 0,
    weight_zp_dtype=np.int8,
    with_act_zp: bool = True,
    opset: int = 17,
    batch: int | str = "batch",
) -> onnx.ModelProto:
    """x[batch,3,8,8] -> Q/DQ -> Conv(4 filters, int8 per-channel weights) -> Relu -> y.

    Every argument bends one rule `check_tensorrt` enforces; the defaults satisfy them all.
    """
    rng = np.random.default_rng(0)
    w_q = rng.integers(-127, 128, size=(4, 3, 3, 3)).astype(np.int8)
    scales = np.full(4, 0.01, np.float32) if weight_scales is None else weight_scales
    inits = [
        numpy_helper.from_array(np.array(act_scale, np.float32), "x_scale"),
        numpy_helper.from_array(w_q, "w_q"),
        numpy_helper.from_array(scales.astype(np.float32), "w_scale"),
        numpy_helper.from_array(np.zeros(scales.shape, weight_zp_dtype), "w_zp"),
        numpy_helper.from_array(np.zeros(4, np.float32), "bias"),
    ]
    q_inputs = ["x", "x_scale"]
    if with_act_zp:
        inits.append(numpy_helper.from_array(np.array(act_zp, act_zp_dtype), "x_zp"))
        q_inputs.append("x_zp")
    nodes = [
        helper.make_node("QuantizeLinear", q_inputs, ["x_q"], name="quant_x"),
        helper.make_node("DequantizeLinear", ["x_q", *q_inputs[1:]], ["x_dq"], name="dequant_x"),
        helper.make_node(
            "DequantizeLinear",
            ["w_q", "w_scale", "w_zp"],
            ["w_dq"],
            name="dequant_w",
            axis=weight_axis,
        ),  # fmt: skip
        helper.make_node("Conv", ["x_dq", "w_dq", "bias"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["y"], name="relu"),
    ]
    graph = helper.make_graph(
        nodes,
        "qdq_conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4, 8, 8])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def float_graph(text_nodes: str, inputs: str, outputs: str, opset: int = 17) -> onnx.ModelProto:
    """A model from ONNX textual syntax, e.g. float_graph("y = Relu(x)", "float[N,4] x", ...)."""
    return onnx.parser.parse_model(
        f"""
        <ir_version: 8, opset_import: ["" : {opset}]>
        g ({inputs}) => ({outputs}) {{
            {text_nodes}
        }}
        """
    )


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path
