"""Dynamic INT8: MatMul weights quantized ahead of time, activations at run time.

onnxruntime.quantization.quantize_dynamic does the rewrite (MatMulInteger /
DynamicQuantizeLinear); nnship picks the nodes, reports the ones left in float and why.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import onnx

from nnship.core.errors import QuantizationError
from nnship.quantize.config import ExcludeConfig
from nnship.quantize.placement import GraphInfo
from nnship.quantize.qdq import quiet_ort_quantization
from nnship.quantize.result import FloatNode


def quantize_dynamic_int8(
    model: onnx.ModelProto, *, per_channel: bool = True, exclude: ExcludeConfig | None = None
) -> tuple[onnx.ModelProto, list[str], list[FloatNode]]:
    """Dynamic INT8 of every MatMul with a constant float B (int8 symmetric weights, per output
    column when `per_channel`, default on). Returns (model, quantized node names, float nodes).

    Gemm stays float: ONNX Runtime has no dynamic integer Gemm kernel. Node names must be unique.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    exclude = exclude or ExcludeConfig()
    info = GraphInfo(model)
    chosen: list[str] = []
    float_nodes: list[FloatNode] = []
    for node in model.graph.node:
        if node.op_type not in ("MatMul", "Gemm"):
            continue
        reason = exclude.reason_for(node.name, node.op_type)
        if reason is None and node.op_type == "Gemm":
            reason = "Gemm: ONNX Runtime has no dynamic INT8 Gemm kernel"
        if reason is None and node.input[1] not in info.float_constants:
            reason = "MatMul with non-constant B"
        if reason:
            float_nodes.append(FloatNode(node.name, node.op_type, reason))
        else:
            chosen.append(node.name)
    if not chosen:
        out = onnx.ModelProto()
        out.CopyFrom(model)
        return out, [], float_nodes
    with tempfile.TemporaryDirectory(prefix="nnship-dyn-") as tmp:
        src, dst = Path(tmp) / "in.onnx", Path(tmp) / "out.onnx"
        onnx.save_model(model, str(src))
        try:
            with quiet_ort_quantization():
                quantize_dynamic(
                    src,
                    dst,
                    op_types_to_quantize=["MatMul"],
                    per_channel=per_channel,
                    weight_type=QuantType.QInt8,
                    nodes_to_quantize=chosen,
                    extra_options={"MatMulConstBOnly": True},
                )
        except Exception as exc:  # ORT raises ValueError/KeyError with its own wording
            raise QuantizationError(
                f"onnxruntime.quantization.quantize_dynamic failed: {type(exc).__name__}: {exc}"
            ) from exc
        out = onnx.load(str(dst))
    remaining = {n.name for n in out.graph.node if n.op_type == "MatMul"}
    done = [n for n in chosen if n not in remaining]
    for name in chosen:
        if name in remaining:
            float_nodes.append(FloatNode(name, "MatMul", "left in float by quantize_dynamic"))
    return out, done, float_nodes
