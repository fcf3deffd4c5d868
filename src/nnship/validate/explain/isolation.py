"""A probe model that runs each quantized layer on the float model's activations, so the noise
a layer adds is measured on its own instead of mixed with the noise it inherits.

For every matched layer of the artifact (a compute node and the Q/DQ/Cast chain after it), the
probe holds a renamed copy of that node whose activation inputs are the float model's tensors
(cast to the layer's precision), followed by the node's own output chain. A tensor's Q/DQ pair
counts as the noise of the layer producing it (that layer's output quantization), so the
consumer reads the exact float value; the quantized weights are the artifact's own. The float tensors are the probe's inputs: the caller feeds the
float model's intermediate outputs batch by batch. Only the artifact's nodes and opset are used,
so nothing of the two graphs is mixed.

Written by hand: ONNX Runtime's `qdq_loss_debug` compares whole-model activations only, and
the per-layer "quantize one layer at a time" analyses (AIMET, NNCF) need a model per layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx
from onnx import helper

from nnship.metrics.layer_match import FLOAT_TYPES, TensorMatch, value_types

FLOAT_INPUT_PREFIX = "nnship_float/"


@dataclass
class Probe:
    """The probe model, its inputs (probe input -> the float model's tensor, or the graph input
    of the same name to feed from the batch) and, per float tensor, the probe output holding
    the isolated layer's value."""

    model: onnx.ModelProto
    inputs: dict[str, str]
    outputs: dict[str, str]


class _Builder:
    def __init__(self, other: onnx.ModelProto, f_types: dict[str, int]) -> None:
        self.other = other
        self.f_types = f_types
        self.types = value_types(other)
        self.producer = {o: n for n in other.graph.node for o in n.output if o}
        inits = {i.name for i in other.graph.initializer}
        self.graph_inputs = {v.name for v in other.graph.input if v.name not in inits}
        dynamic = set(self.graph_inputs)
        for node in other.graph.node:  # every tensor fed by a graph input, float or not
            if any(i in dynamic for i in node.input):
                dynamic.update(o for o in node.output if o)
        self.dynamic = dynamic
        self.nodes: list[onnx.NodeProto] = []
        self.consts: set[str] = set()
        self.inputs: dict[str, tuple[str, int]] = {}
        self.produced: set[str] = set()

    def const(self, name: str) -> str | None:
        """`name` if it is computed from initializers alone (recorded for inclusion)."""
        if name in self.dynamic:
            return None
        self.consts.add(name)
        return name

    def _params(self, node: onnx.NodeProto) -> list[str] | None:
        """Inputs after the first (scale, zero point) if all constant, else None."""
        rest = [self.const(i) if i else "" for i in node.input[1:]]
        return None if any(r is None for r in rest) else [r or "" for r in rest]

    def float_input(self, tensor: str) -> str:
        name = FLOAT_INPUT_PREFIX + tensor
        self.inputs[name] = (tensor, self.f_types.get(tensor) or onnx.TensorProto.FLOAT)
        return name

    def graph_input(self, name: str) -> str:
        """A graph input read as is (token ids, masks): fed from the batch itself."""
        self.inputs[name] = (name, self.types.get(name) or onnx.TensorProto.FLOAT)
        return name

    def copy(self, node: onnx.NodeProto, inputs: list[str], prefix: str) -> onnx.NodeProto:
        new = onnx.NodeProto()
        new.CopyFrom(node)
        new.name = prefix + (node.name or node.output[0])
        del new.input[:]
        new.input.extend(inputs)
        del new.output[:]
        new.output.extend(prefix + o if o else "" for o in node.output)
        return new

    def replay(self, float_tensor: str, chain: list[str], prefix: str, out: list) -> str | None:
        """The float tensor as the layer reads `chain[-1]`: a float read gets the float value
        itself (cast to its precision), since the Q/DQ noise before it belongs to the producing
        layer; an integer read (QOperator kernels) gets the artifact's own re-encoding.
        None when that re-encoding needs a non-constant parameter."""
        current = self.float_input(float_tensor)
        target_type = self.types.get(chain[-1], 0)
        if target_type in FLOAT_TYPES or target_type == 0:
            return self._cast(current, target_type, float_tensor, prefix + chain[-1], out)
        current = self._cast(
            current, self.types.get(chain[0], 0), float_tensor, prefix + chain[0], out
        )
        for name in chain[1:]:
            node = self.producer[name]
            rest = self._params(node)
            if rest is None:
                return None
            copied = self.copy(node, [current, *rest], prefix)
            if copied.output[0] not in self.produced:  # two inputs may share a chain
                out.append(copied)
                self.produced.update(copied.output)
            current = copied.output[0]
        return current

    def _cast(self, current: str, to: int, float_tensor: str, name: str, out: list) -> str:
        have = self.f_types.get(float_tensor, 0)
        if not to or not have or to == have:
            return current
        cast = name + "/cast"
        if cast not in self.produced:
            out.append(helper.make_node("Cast", [current], [cast], name=cast, to=to))
            self.produced.add(cast)
        return cast

    def layer(self, k: int, m: TensorMatch, by_tensor: dict[str, tuple[TensorMatch, int]]) -> str:
        """Add the isolated copy of `m`'s layer; its output name, or "" if it cannot be built."""
        node = self.producer.get(m.chain[0])
        if node is None or any(a.type in (a.GRAPH, a.GRAPHS) for a in node.attribute):
            return ""
        prefix = f"nnship_iso{k}/"
        added: list[onnx.NodeProto] = []
        fed: dict[str, str] = {}
        inputs: list[str] = []
        for name in node.input:
            if not name:
                inputs.append("")
            elif name in fed:
                inputs.append(fed[name])
            elif self.const(name) is not None:
                inputs.append(name)
            elif name in self.graph_inputs and name not in by_tensor:
                inputs.append(self.graph_input(name))
            elif name in by_tensor:
                src, pos = by_tensor[name]
                value = self.replay(src.float_tensor, src.chain[: pos + 1], prefix + "in/", added)
                if value is None:
                    return ""
                fed[name] = value
                inputs.append(value)
            else:
                return ""  # an activation with no float counterpart: cannot isolate
        copied = self.copy(node, inputs, prefix)
        added.append(copied)
        current = prefix + m.chain[0]
        for name in m.chain[1:]:
            step = self.producer[name]
            rest = self._params(step)
            if rest is None:
                return ""
            nxt = self.copy(step, [current, *rest], prefix)
            added.append(nxt)
            current = nxt.output[0]
        self.nodes.extend(added)
        return current

    def const_nodes(self) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
        """The artifact's constant subgraph the copies read (weight DQs...) and initializers."""
        needed, stack = set(), list(self.consts)
        while stack:
            name = stack.pop()
            if name in needed:
                continue
            needed.add(name)
            node = self.producer.get(name)
            if node is not None:
                stack.extend(i for i in node.input if i)
        nodes = [n for n in self.other.graph.node if any(o in needed for o in n.output)]
        inits = [i for i in self.other.graph.initializer if i.name in needed]
        return nodes, inits


def build_probe(
    other: onnx.ModelProto, matches: list[TensorMatch], float_types: dict[str, int]
) -> Probe | None:
    """The probe for `matches` (layers with a producing node); None if no layer can be
    isolated. `float_types`: element types of the float model's tensors (`value_types`)."""
    builder = _Builder(other, float_types)
    by_tensor: dict[str, tuple[TensorMatch, int]] = {}
    for m in matches:
        for pos, name in enumerate(m.chain):
            by_tensor.setdefault(name, (m, pos))
    outputs: dict[str, str] = {}
    for k, m in enumerate(matches):
        if m.node is not None:
            out = builder.layer(k, m, by_tensor)
            if out:
                outputs[m.float_tensor] = out
    if not outputs:
        return None
    const_nodes, inits = builder.const_nodes()
    graph = helper.make_graph(
        const_nodes + builder.nodes,
        f"{other.graph.name or 'model'}_layer_probe",
        [
            helper.make_tensor_value_info(name, elem_type, None)
            for name, (_, elem_type) in builder.inputs.items()
        ],
        [
            helper.make_tensor_value_info(name, builder.types.get(_orig(name)) or 1, None)
            for name in outputs.values()
        ],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=list(other.opset_import))
    model.ir_version = other.ir_version
    model.functions.extend(other.functions)
    return Probe(model, {name: t for name, (t, _) in builder.inputs.items()}, outputs)


def _orig(name: str) -> str:
    # "nnship_iso3/relu_DequantizeLinear_Output" -> "relu_DequantizeLinear_Output"
    return name.split("/", 1)[1] if name.startswith("nnship_iso") else name
