"""Which nodes get Q/DQ, and a reason for every compute node that stays in float.

Written by hand because no library does this part well: onnxruntime.quantization takes a node
list but quantizes whatever tensor it is given (it quantized a torch attention-mask bias with a
scale of ~1e36 and collapsed the encoder), and it does not say why a node was skipped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import onnx

from nnship.core.errors import CalibrationError
from nnship.onnx.graph import tensor_types
from nnship.quantize.config import ExcludeConfig
from nnship.quantize.profiles import STRUCTURAL_OPS, WEIGHTED_OPS, QuantProfile
from nnship.quantize.result import FloatNode

Range = tuple[float, float]
_EPILOGUE_OPS = frozenset({"Relu", "Clip", "LeakyRelu"})
# Normalizations over the hidden axis of a transformer. The tensor they read is the residual
# stream, where pretrained transformers carry a few outlier channels (Kovaleva et al. 2021,
# Dettmers et al. 2022): one per-tensor INT8 scale for it wipes out the other channels.
NORM_OPS = frozenset(
    {
        "LayerNormalization",
        "SkipLayerNormalization",
        "SimplifiedLayerNormalization",
        "SkipSimplifiedLayerNormalization",
        "RMSNormalization",
    }
)
_FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)
_FLOATING = (
    onnx.TensorProto.UNDEFINED,
    *_FLOAT_TYPES,
    onnx.TensorProto.DOUBLE,
    onnx.TensorProto.BFLOAT16,
)


@dataclass
class Placement:
    """Nodes to quantize (by name, graph order), float nodes with reasons, and the activation
    tensors whose ranges the Q/DQ writer needs."""

    nodes: list[str] = field(default_factory=list)
    float_nodes: list[FloatNode] = field(default_factory=list)
    tensors: set[str] = field(default_factory=set)
    op_types: dict[str, str] = field(default_factory=dict)


def ensure_node_names(model: onnx.ModelProto) -> onnx.ModelProto:
    """Give every unnamed (or duplicate-named) node a unique name `<op>_<index>`, in place;
    node lists and reports need stable names."""
    seen: set[str] = set()
    for index, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{index}"
        seen.add(node.name)
    return model


class GraphInfo:
    """Producers, constants and graph inputs of one ONNX graph."""

    def __init__(self, model: onnx.ModelProto) -> None:
        graph = model.graph
        self.constants = {i.name for i in graph.initializer}
        self.float_constants = {i.name for i in graph.initializer if i.data_type in _FLOAT_TYPES}
        for node in graph.node:
            if node.op_type == "Constant":
                self.constants.update(node.output)
                self.float_constants.update(node.output)
        self.inputs = {i.name for i in graph.input if i.name not in self.constants}
        # Tensors typed as integers or booleans (shape arithmetic of foreign graphs: a Mul of
        # two Gathers of a Shape) are never activations to quantize. Untyped tensors count as
        # float, as before; shape inference (a pass per GraphInfo) fills the types only when
        # the graph declares none.
        types = tensor_types(model, infer=not graph.value_info)
        self.non_float = {name for name, elem in types.items() if elem not in _FLOATING}
        self.producer = {out: node for node in graph.node for out in node.output}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)

    def is_activation(self, tensor: str) -> bool:
        return bool(tensor) and tensor not in self.constants and tensor not in self.non_float

    def reaches_input(self, tensor: str, word: str, depth: int = 12) -> bool:
        """True if `tensor` is computed from a graph input whose name contains `word`."""
        frontier, seen = [tensor], set()
        for _ in range(depth):
            nxt: list[str] = []
            for name in frontier:
                if name in seen:
                    continue
                seen.add(name)
                if name in self.inputs and word in name.lower():
                    return True
                node = self.producer.get(name)
                if node is not None:
                    nxt.extend(i for i in node.input if i)
            frontier = nxt
        return False


def _range_problem(
    tensor: str,
    ranges: Mapping[str, Range],
    degenerate: Mapping[str, str],
    extreme: float,
    info: GraphInfo,
) -> str | None:
    if tensor in degenerate:
        why = degenerate[tensor]
        if "extreme" in why or "NaN/Inf" in why:
            what = "attention mask bias" if info.reaches_input(tensor, "mask") else "tensor"
            return f"extreme range: {what} '{tensor}' ({why})"
        return f"degenerate range: tensor '{tensor}' ({why})"
    if tensor not in ranges:
        return f"no calibration range for tensor '{tensor}'"
    lo, hi = (float(v) for v in ranges[tensor])
    if math.isnan(lo) or math.isnan(hi):
        raise CalibrationError(
            f"Calibration range of tensor '{tensor}' is NaN; the calibration data or the model "
            "produces NaN there. Check the data and recollect the statistics."
        )
    if not (math.isfinite(lo) and math.isfinite(hi)) or max(abs(lo), abs(hi)) >= extreme:
        what = "attention mask bias" if info.reaches_input(tensor, "mask") else "tensor"
        return f"extreme range: {what} '{tensor}' spans [{lo:.3g}, {hi:.3g}]"
    if hi <= lo:
        return f"degenerate range: tensor '{tensor}' is constant ({lo:.6g}) on the calibration data"
    return None


def _structural_reason(node: onnx.NodeProto, info: GraphInfo, profile: QuantProfile) -> str | None:
    """Why a node of a quantizable op type is not a quantization site for this profile."""
    op = node.op_type
    if op in WEIGHTED_OPS:
        weight = node.input[1] if len(node.input) > 1 else ""
        if weight not in info.float_constants:
            what = "weights" if op.startswith("Conv") else "B"
            return f"{op} with non-constant {what}"
        if not info.is_activation(node.input[0]):
            return f"{op} with a constant first input"
        return None
    if op in profile.eltwise_ops:
        if not all(info.is_activation(i) for i in node.input):
            return f"{op} with a constant input (bias or scale)"
        if profile.float_norm_inputs:
            norms = sorted(
                {c.op_type for o in node.output for c in info.consumers.get(o, [])} & NORM_OPS
            )
            if norms:
                return (
                    f"{op} feeds {norms[0]}: residual stream with outlier channels, kept "
                    "float (as NNCF's transformer mode)"
                )
        return None
    return None


def plan_placement(
    model: onnx.ModelProto,
    profile: QuantProfile,
    ranges: Mapping[str, Range],
    *,
    exclude: ExcludeConfig | None = None,
    degenerate: Mapping[str, str] | None = None,
    extreme_range: float = 1e4,
    force_float: Mapping[str, str] | None = None,
) -> Placement:
    """Decide the quantized nodes of `model` (node names must be unique: `ensure_node_names`).

    Rules, in graph order: op types the profile does not quantize stay float (shape plumbing is
    not listed); user exclusions and `force_float` (reverted nodes) win; weighted ops need a
    constant weight; eltwise ops and followers (pools, Relu/Clip) need a quantized producer;
    every activation tensor a node would quantize needs a finite, non-degenerate range below
    `extreme_range` (absolute value).
    """
    exclude = exclude or ExcludeConfig()
    degenerate = degenerate or {}
    force_float = force_float or {}
    info = GraphInfo(model)
    plan = Placement()
    quantized: set[str] = set()

    for node in model.graph.node:
        op = node.op_type
        plan.op_types[node.name] = op
        reason = None
        if op not in profile.op_types:
            if op in _EPILOGUE_OPS:
                why = f"{op} needs no Q/DQ: {profile.name} fuses it into its producer"
            else:
                why = f"{op} is not quantized by the {profile.name} profile"
            if op not in STRUCTURAL_OPS:
                plan.float_nodes.append(FloatNode(node.name, op, why))
            continue
        reason = exclude.reason_for(node.name, op) or force_float.get(node.name)
        reason = reason or _structural_reason(node, info, profile)
        acts = [i for i in node.input if info.is_activation(i)]
        needed = list(acts)
        if op not in profile.exclude_output_ops:
            needed += [o for o in node.output if o and o not in info.non_float]
        if reason is None and not acts and op not in WEIGHTED_OPS:
            inputs = [i for i in node.input if i and i not in info.constants]
            if inputs and all(i in info.non_float for i in inputs):
                reason = f"{op} on non-float tensors (shape arithmetic)"
        if reason is None:
            # Range problems first: "extreme range: attention mask bias" says more than
            # "no quantized producer" about why a node must stay float.
            for tensor in needed:
                reason = _range_problem(tensor, ranges, degenerate, extreme_range, info)
                if reason:
                    break
        if reason is None and op not in WEIGHTED_OPS:
            producers = [info.producer.get(i) for i in acts]
            if not any(p is not None and p.name in quantized for p in producers):
                reason = f"{op} between float tensors (no quantized producer)"
        if reason is not None:
            plan.float_nodes.append(FloatNode(node.name, op, reason))
            continue
        quantized.add(node.name)
        plan.nodes.append(node.name)
        plan.tensors.update(needed)
        plan.tensors.update(o for o in node.output if o in ranges)
    return plan
