"""Where a quantized layer's bias lives in a QDQ graph, and how bias correction edits it.

onnxruntime.quantization writes a Conv/Gemm bias as int32 values behind a DequantizeLinear,
with scale `input_scale * weight_scale` per output channel. ONNX Runtime folds that group into
QLinearConv / QGemm and reads the int32 values directly, trusting that scale. So a correction
changes only the int32 values (rounded), never the scale. A float bias is edited as float.
A bias shared with another node gets a private copy first. A layer without a bias gets a zero
one, in int32 when its input and weight are quantized, because a float bias would break the
QDQ group that ONNX Runtime fuses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

log = logging.getLogger(__name__)

_PREFIX = "__nnship_bias_correction"


@dataclass
class LayerBias:
    """One layer to correct and where its bias is stored."""

    name: str
    op_type: str
    quant_tensor: str  # the node's float output in the QDQ model
    float_tensor: str  # the same pre-activation value in the float model
    rank: int
    channels: int
    beta: float = 1.0  # Gemm scales its bias by beta
    init: str = ""  # initializer holding the bias values (int32 or float)
    scale: np.ndarray | None = None  # per-channel scale of an int32 bias
    kind: str = ""  # "int32", "float", "created int32", "created float"
    level: int = 0


class GraphIndex:
    """Producer, reader and constant lookups over one graph, and fresh tensor names."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.inits = {i.name: i for i in graph.initializer}
        self.producer = {o: n for n in graph.node for o in n.output if o}
        self.readers: dict[str, int] = {}
        for node in graph.node:
            for name in node.input:
                self.readers[name] = self.readers.get(name, 0) + 1
        self.outputs = {o.name for o in graph.output}
        self.names = set(self.inits) | set(self.producer) | {i.name for i in graph.input}

    def constant(self, name: str) -> np.ndarray | None:
        """The value of an initializer, a Constant output, or Identity of those."""
        if name in self.inits:
            return numpy_helper.to_array(self.inits[name])
        node = self.producer.get(name)
        if node is None:
            return None
        if node.op_type == "Constant":
            value = next((a for a in node.attribute if a.name == "value"), None)
            return None if value is None else numpy_helper.to_array(value.t)
        if node.op_type == "Identity":
            return self.constant(node.input[0])
        return None

    def private(self, name: str) -> bool:
        """True when `name` is an initializer only one node reads and no output exposes."""
        return name in self.inits and self.readers.get(name, 0) == 1 and name not in self.outputs

    def dequantize(self, name: str) -> onnx.NodeProto | None:
        node = self.producer.get(name)
        return node if node is not None and node.op_type == "DequantizeLinear" else None

    def fresh(self, hint: str) -> str:
        name, i = f"{_PREFIX}_{hint}", 1
        while name in self.names:
            name, i = f"{_PREFIX}_{hint}_{i}", i + 1
        self.names.add(name)
        return name


def prepare_biases(
    model: onnx.ModelProto,
    found: list[tuple[onnx.NodeProto, LayerBias]],
    skipped: list[tuple[str, str]],
) -> list[LayerBias]:
    """Give each layer in `found` (its node in `model`, which is edited in place) a bias
    initializer of its own: a private copy of a shared one, or a new zero bias. Layers whose
    bias cannot be edited go to `skipped` with the reason. New DequantizeLinear nodes are put
    right before their layer, so the graph stays in topological order."""
    g = GraphIndex(model.graph)
    new_inits: list[onnx.TensorProto] = []
    before: dict[str, list[onnx.NodeProto]] = {}
    ready = []
    for node, layer in found:
        new_nodes: list[onnx.NodeProto] = []
        reason = _own_bias(node, layer, g, new_inits, new_nodes)
        if reason is not None:
            skipped.append((layer.name, reason))
            continue
        before[node.output[0]] = new_nodes
        ready.append(layer)
    model.graph.initializer.extend(new_inits)
    if any(before.values()):
        nodes = []
        for node in model.graph.node:
            nodes.extend(before.get(node.output[0], []) if node.output else [])
            copy = onnx.NodeProto()
            copy.CopyFrom(node)
            nodes.append(copy)
        del model.graph.node[:]
        model.graph.node.extend(nodes)
    return ready


def _own_bias(
    node: onnx.NodeProto, layer: LayerBias, g: GraphIndex, new_inits: list, new_nodes: list
) -> str | None:
    """Fill `layer.init/scale/kind`, copying or creating what is needed; a reason to skip the
    layer, or None."""
    if len(node.input) < 3 or not node.input[2]:
        _create_bias(node, layer, g, new_inits, new_nodes)
        return None
    bias = node.input[2]
    dq = g.dequantize(bias)
    if dq is None:
        values = g.constant(bias)
        if values is None or values.dtype.kind != "f":
            return "bias is computed in the graph, not a constant"
        if values.size != layer.channels:
            return f"bias of shape {list(values.shape)} is not per output channel"
        layer.kind, layer.init = "float", bias
        if not g.private(bias):  # shared, or behind Identity/Constant: a private copy
            layer.init = g.fresh(f"{layer.name}_bias")
            new_inits.append(numpy_helper.from_array(values, layer.init))
            node.input[2] = layer.init
        return None
    values, scale = g.constant(dq.input[0]), g.constant(dq.input[1])
    zero = g.constant(dq.input[2]) if len(dq.input) > 2 and dq.input[2] else np.zeros(1)
    if values is None or scale is None or zero is None or values.dtype != np.int32:
        return "bias is quantized, but not to constant int32 values"
    if np.any(zero != 0) or values.size != layer.channels:
        return "int32 bias with a zero point or a shape other than [channels]"
    layer.kind, layer.init = "int32", dq.input[0]
    layer.scale = np.broadcast_to(scale.astype(np.float64).ravel(), (layer.channels,)).copy()
    if g.private(dq.input[0]) and g.readers.get(bias, 0) == 1 and bias not in g.outputs:
        return None
    layer.init = g.fresh(f"{layer.name}_bias_quantized")
    new_inits.append(numpy_helper.from_array(values, layer.init))
    copy = onnx.NodeProto()
    copy.CopyFrom(dq)
    copy.name, copy.input[0] = g.fresh(f"{layer.name}_bias_DequantizeLinear"), layer.init
    copy.output[0] = g.fresh(f"{layer.name}_bias")
    new_nodes.append(copy)
    node.input[2] = copy.output[0]
    return None


def _create_bias(
    node: onnx.NodeProto, layer: LayerBias, g: GraphIndex, new_inits: list, new_nodes: list
) -> None:
    """A zero bias: int32 behind a DequantizeLinear with scale `input_scale * weight_scale`
    when input and weight are both quantized, else float."""
    xdq, wdq = g.dequantize(node.input[0]), g.dequantize(node.input[1])
    sx = g.constant(xdq.input[1]) if xdq is not None else None
    sw = g.constant(wdq.input[1]) if wdq is not None else None
    name = g.fresh(f"{layer.name}_bias")
    if sx is not None and sw is not None and sx.size == 1:
        # the float32 product, as onnxruntime.quantization computes bias scales
        scale = (np.float32(sx.reshape(())) * sw.astype(np.float32).ravel()).astype(np.float32)
        names = [g.fresh(f"{layer.name}_bias_{part}") for part in ("quantized", "scale", "zp")]
        new_inits += [
            numpy_helper.from_array(np.zeros(layer.channels, np.int32), names[0]),
            numpy_helper.from_array(scale if scale.size > 1 else scale.reshape(()), names[1]),
            numpy_helper.from_array(
                np.zeros(scale.shape if scale.size > 1 else (), np.int32), names[2]
            ),
        ]
        axis = [helper.make_attribute("axis", 0)] if scale.size > 1 else []
        dq = helper.make_node(
            "DequantizeLinear", names, [name], name=g.fresh(f"{layer.name}_bias_dq")
        )
        dq.attribute.extend(axis)
        new_nodes.append(dq)
        layer.kind, layer.init = "created int32", names[0]
        layer.scale = np.broadcast_to(scale.astype(np.float64), (layer.channels,)).copy()
    else:
        new_inits.append(numpy_helper.from_array(np.zeros(layer.channels, np.float32), name))
        layer.kind, layer.init = "created float", name
    if len(node.input) == 2:
        node.input.append(name)
    else:
        node.input[2] = name


def apply_shift(init: onnx.TensorProto, layer: LayerBias, shift: np.ndarray) -> np.ndarray:
    """Add `shift` (per output channel, in output units) to the bias stored in `init`, which
    is replaced in place; returns the correction really applied (after int32 rounding)."""
    values = numpy_helper.to_array(init)
    shift = np.asarray(shift, np.float64) / layer.beta  # Gemm: y = alpha A B + beta C
    old = values.astype(np.float64).ravel()
    if layer.scale is not None:  # int32: q_new = round(q + shift / scale), same scale
        limits = np.iinfo(np.int32)
        wanted = np.rint(old + shift / layer.scale)
        new = np.clip(wanted, limits.min, limits.max)
        if np.any(new != wanted):
            log.warning("bias correction: the int32 bias of '%s' saturated", layer.name)
        stored = new.astype(np.int32)
        applied = (new - old) * layer.scale
    else:
        stored = (old + shift).astype(values.dtype)
        applied = stored.astype(np.float64) - old
    init.CopyFrom(numpy_helper.from_array(stored.reshape(values.shape), init.name))
    return applied * layer.beta
