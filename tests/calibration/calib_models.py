"""Tiny ONNX graphs for the calibration tests, built inline with `onnx.helper`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

IR_VERSION = 10  # what the installed ONNX Runtime accepts


def make_model(nodes, inputs, outputs, inits=(), opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=IR_VERSION
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def relu_scale(path: Path | None = None, batch: int | str = "N") -> onnx.ModelProto:
    """x[N, 4] -> Relu -> r -> Mul(2) -> y."""
    two = numpy_helper.from_array(np.array(2.0, np.float32), "two")
    model = make_model(
        [
            helper.make_node("Relu", ["x"], ["r"], name="relu"),
            helper.make_node("Mul", ["r", "two"], ["y"], name="mul"),
        ],  # fmt: skip
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4])],
        [two],
    )
    if path is not None:
        onnx.save(model, str(path))
    return model


def conv_chain(
    *, activation: str = "Relu", depthwise: bool = False, seed: int = 0, imbalance: float = 50.0
) -> onnx.ModelProto:
    """x[N,4,8,8] -> Conv(4->8) -> act -> Conv(8->6, or depthwise 8->8) -> Relu -> Conv(->3).

    The first conv's output channels get ranges spread over `imbalance`x (compensated in the
    next conv, so the function is that of a balanced net): what CLE should undo.
    """
    rng = np.random.default_rng(seed)
    spread = np.geomspace(1.0, imbalance, 8).astype(np.float32)
    w1 = rng.normal(size=(8, 4, 3, 3)).astype(np.float32) * spread[:, None, None, None]
    b1 = rng.normal(size=8).astype(np.float32) * spread
    if depthwise:
        w2 = rng.normal(size=(8, 1, 3, 3)).astype(np.float32) / spread[:, None, None, None]
        cout2, group = 8, 8
    else:
        w2 = rng.normal(size=(6, 8, 3, 3)).astype(np.float32) / spread[None, :, None, None]
        cout2, group = 6, 1
    b2 = rng.normal(size=cout2).astype(np.float32)
    w3 = rng.normal(size=(3, cout2, 1, 1)).astype(np.float32)
    inits = [numpy_helper.from_array(v, n) for n, v in
             (("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2), ("w3", w3))]  # fmt: skip
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1] * 4)]
    if activation == "Relu":
        nodes.append(helper.make_node("Relu", ["c1"], ["a1"], name="act1"))
    elif activation == "Relu6":
        inits += [numpy_helper.from_array(np.array(v, np.float32), n)
                  for n, v in (("zero", 0.0), ("six", 6.0))]  # fmt: skip
        nodes.append(helper.make_node("Clip", ["c1", "zero", "six"], ["a1"], name="act1"))
    else:
        nodes.append(helper.make_node("Identity", ["c1"], ["a1"], name="act1"))
    nodes += [
        helper.make_node(
            "Conv", ["a1", "w2", "b2"], ["c2"], name="conv2", pads=[1] * 4, group=group
        ),  # fmt: skip
        helper.make_node("Relu", ["c2"], ["a2"], name="act2"),
        helper.make_node("Conv", ["a2", "w3"], ["y"], name="conv3"),
    ]
    return make_model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 8, 8])],
        inits,
    )


def run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options)
    return session.run(None, feeds)


def max_rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-12))
