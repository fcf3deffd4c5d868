"""FP16 conversion with float32 inputs/outputs kept by default.

onnxruntime.transformers.float16 does the conversion (Cast insertion at blocked ops, clamping
of out-of-range constants to +-65504, e.g. attention-mask biases built from the float32 minimum);
nnship adds the user's exclusions and the report of what stayed float32.
"""

from __future__ import annotations

import onnx

from nnship.core.errors import QuantizationError
from nnship.quantize.config import ExcludeConfig
from nnship.quantize.result import FloatNode


def convert_fp16(
    model: onnx.ModelProto, *, keep_io_types: bool = True, exclude: ExcludeConfig | None = None
) -> tuple[onnx.ModelProto, list[FloatNode]]:
    """Return an FP16 copy of `model` and the nodes kept in float32 (with reasons).

    `keep_io_types` (default True) keeps graph inputs/outputs float32, with Casts inside.
    Node names must be unique (`placement.ensure_node_names`).
    """
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    exclude = exclude or ExcludeConfig()
    op_block = sorted(set(DEFAULT_OP_BLOCK_LIST) | set(exclude.op_types))
    float_nodes: list[FloatNode] = []
    node_block = []
    for node in model.graph.node:
        user = exclude.reason_for(node.name, node.op_type)
        if user:
            float_nodes.append(FloatNode(node.name, node.op_type, user))
            node_block.append(node.name)
        elif node.op_type in DEFAULT_OP_BLOCK_LIST:
            float_nodes.append(
                FloatNode(
                    node.name, node.op_type, f"{node.op_type} has no FP16 kernel: kept in float32"
                )
            )
    work = onnx.ModelProto()
    work.CopyFrom(model)
    try:
        converted = convert_float_to_float16(
            work,
            keep_io_types=keep_io_types,
            op_block_list=op_block,
            node_block_list=node_block,
        )
    except Exception as exc:  # the converter raises ValueError/AssertionError on odd graphs
        raise QuantizationError(f"FP16 conversion failed: {type(exc).__name__}: {exc}") from exc
    from onnxruntime.quantization.onnx_model import ONNXModel

    ONNXModel(converted).topological_sort()  # the converter appends its Casts at the end
    return converted, float_nodes
