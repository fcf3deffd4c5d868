"""Tiny real ONNX graphs, one per task metric family, built inline with `onnx.helper` and
saved for ONNX Runtime: a baseline and a candidate that differs the way a quantized copy does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def _const(name: str, value: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value), name)


def _output(name: str, *dims):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", *dims])


def save(nodes, inputs, outputs, inits, path: Path) -> Path:
    graph = helper.make_graph(nodes, path.stem, inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


def _input(name: str, *dims, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, ["batch", *dims])


def linear(path: Path, w: np.ndarray, b: np.ndarray, *dims, out: str = "logits") -> Path:
    """`out = x @ w + b` for `x` [N, *dims, F]: classifier logits [N, C], CTC logits [N, T, C],
    pitch bins [N, T, bins]."""
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["xw"]),
        helper.make_node("Add", ["xw", "b"], [out]),
    ]
    return save(
        nodes,
        [_input("x", *dims, w.shape[0])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["batch", *dims, w.shape[1]])],
        [_const("w", w.astype(np.float32)), _const("b", b.astype(np.float32))],
        path,
    )


def yolo_head(
    path: Path, seed: int = 0, *, anchors: int = 32, classes: int = 3, fake_quant: str = "none"
) -> Path:
    """A YOLO-style detector head `output0` [N, 4+C, A] from features `x` [N, 8]: box centres
    in pixels (320 +- 250), widths/heights 20..60 px, class scores sigmoid(.) in 0..1, joined by
    one Concat on axis 1 as an exported ultralytics head is.

    `fake_quant`: "shared" puts one uint8 QuantizeLinear/DequantizeLinear pair with one scale
    (640/255) on the Concat's output, as a quantizer giving the Concat one shared scale does:
    every score rounds to 0 while the boxes move by at most 1.25 px. "per_input" quantizes each
    Concat input with its own scale (boxes 640/255, scores 1/255)."""
    rng = np.random.default_rng(seed)
    a, c = anchors, classes
    inits = [
        _const("w_xy", rng.standard_normal((8, 2 * a)).astype(np.float32)),
        _const("w_wh", rng.standard_normal((8, 2 * a)).astype(np.float32)),
        _const("w_cls", rng.standard_normal((8, c * a)).astype(np.float32)),
        _const("b_cls", np.full(c * a, -1.5, np.float32)),
        _const("half_range", np.float32(250.0)),
        _const("centre", np.float32(320.0)),
        _const("size_range", np.float32(40.0)),
        _const("size_min", np.float32(20.0)),
        _const("shape_xy", np.array([0, 2, a], np.int64)),
        _const("shape_cls", np.array([0, c, a], np.int64)),
    ]
    if fake_quant != "none":
        inits += [_const("box_scale", np.float32(640.0 / 255)), _const("zero", np.uint8(0))]
    if fake_quant == "per_input":
        inits.append(_const("score_scale", np.float32(1.0 / 255)))
    nodes = [
        helper.make_node("MatMul", ["x", "w_xy"], ["xy_raw"]),
        helper.make_node("Tanh", ["xy_raw"], ["xy_t"]),
        helper.make_node("Mul", ["xy_t", "half_range"], ["xy_s"]),
        helper.make_node("Add", ["xy_s", "centre"], ["xy"]),
        helper.make_node("Reshape", ["xy", "shape_xy"], ["xy3"]),
        helper.make_node("MatMul", ["x", "w_wh"], ["wh_raw"]),
        helper.make_node("Sigmoid", ["wh_raw"], ["wh_t"]),
        helper.make_node("Mul", ["wh_t", "size_range"], ["wh_s"]),
        helper.make_node("Add", ["wh_s", "size_min"], ["wh"]),
        helper.make_node("Reshape", ["wh", "shape_xy"], ["wh3"]),
        helper.make_node("MatMul", ["x", "w_cls"], ["cls_raw"]),
        helper.make_node("Add", ["cls_raw", "b_cls"], ["cls_b"]),
        helper.make_node("Sigmoid", ["cls_b"], ["cls_s"]),
        helper.make_node("Reshape", ["cls_s", "shape_cls"], ["scores"]),
        helper.make_node("Concat", ["xy3", "wh3"], ["boxes"], axis=1),
    ]
    parts = ["boxes", "scores"]
    if fake_quant == "per_input":
        parts = []
        for name, scale in (("boxes", "box_scale"), ("scores", "score_scale")):
            nodes += [
                helper.make_node("QuantizeLinear", [name, scale, "zero"], [f"{name}_q"]),
                helper.make_node("DequantizeLinear", [f"{name}_q", scale, "zero"], [f"{name}_dq"]),
            ]
            parts.append(f"{name}_dq")
    head = "output0" if fake_quant != "shared" else "head"
    nodes.append(helper.make_node("Concat", parts, [head], axis=1))
    if fake_quant == "shared":
        nodes += [
            helper.make_node("QuantizeLinear", ["head", "box_scale", "zero"], ["head_q"]),
            helper.make_node("DequantizeLinear", ["head_q", "box_scale", "zero"], ["output0"]),
        ]
    return save(
        nodes,
        [_input("x", 8)],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["batch", 4 + c, a])],
        inits,
        path,
    )


def score_map(path: Path, kernel: np.ndarray) -> Path:
    """A dense map `map` [N, 1, H, W] (logits): a 3x3 convolution of `x` [N, 1, H, W]."""
    nodes = [helper.make_node("Conv", ["x", "k"], ["map"], pads=[1, 1, 1, 1])]
    return save(
        nodes,
        [_input("x", 1, 8, 8)],
        [helper.make_tensor_value_info("map", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [_const("k", kernel.astype(np.float32).reshape(1, 1, 3, 3))],
        path,
    )


def encoder(path: Path, w: np.ndarray, *, padding_noise: np.ndarray | None = None) -> Path:
    """A sentence encoder's `last_hidden_state` [N, L, H] = tanh(x @ w) from token features `x`
    [N, L, D] and `attention_mask` [N, L] (int64). With `padding_noise` [L, H] the candidate
    adds it where the mask is 0 (padding), and only there."""
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["xw"]),
        helper.make_node("Tanh", ["xw"], ["hidden"]),
    ]
    inits = [_const("w", w.astype(np.float32))]
    out = "hidden"
    if padding_noise is not None:
        inits += [
            _const("noise", padding_noise.astype(np.float32)),
            _const("one", np.float32(1.0)),
            _const("axis", np.array([-1], np.int64)),
        ]
        nodes += [
            helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
            helper.make_node("Sub", ["one", "mask_f"], ["pad"]),
            helper.make_node("Unsqueeze", ["pad", "axis"], ["pad3"]),
            helper.make_node("Mul", ["pad3", "noise"], ["pad_noise"]),
            helper.make_node("Add", ["hidden", "pad_noise"], ["noisy"]),
        ]
        out = "noisy"
    nodes.append(helper.make_node("Identity", [out], ["last_hidden_state"]))
    length, hidden = padding_noise.shape if padding_noise is not None else (None, w.shape[1])
    return save(
        nodes,
        [
            _input("x", length or "len", w.shape[0]),
            _input("attention_mask", length or "len", dtype=TensorProto.INT64),
        ],
        [_output("last_hidden_state", length or "len", hidden)],
        inits,
        path,
    )
