"""Match the activations of a float ONNX model to those of its quantized (or FP16, or
re-optimized) version, and name the PyTorch module each node came from.

Written by hand: neither ONNX Runtime nor onnx ships a graph-correspondence pass (ORT's
`qdq_loss_debug` only handles QDQ models whose tensor names survived unchanged). Matching order:

1. by name: a tensor of the float graph that keeps its name in the other graph;
2. through Q/DQ (and Cast) chains: the float tensor `t` is the input of a QuantizeLinear whose
   DequantizeLinear output (`t_DequantizeLinear_Output`) is what the next layer sees, so that DQ
   output is compared with `t`; ONNX Runtime's QDQ quantizer also renames graph outputs
   (`output_QuantizeLinear_Input` -> Q -> DQ -> `output`);
3. by node name: a node kept under its name (and op type) whose output tensor was renamed;
4. by op order: the remaining nodes of each op type, paired in topological order when both
   graphs have the same number of them (renamed graphs).

Tensors fused away (ORT "all" optimizations, Relu folded into a quantized Conv) simply stay
unmatched; `LayerMatching.coverage` says how much of the float graph was found.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import onnx

from nnship.onnx.graph import tensor_types

TRANSPARENT_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "Cast"})
"""Ops that only re-encode a tensor (quantize, dequantize, change precision)."""

_FOLDABLE = frozenset({"Relu", "Clip"})
"""Activations quantizers and ONNX Runtime fold into the node producing their input."""
_NON_ACTIVATION_OPS = frozenset({"Constant", "Shape", "Size", "ConstantOfShape"})
FLOAT_TYPES = frozenset(
    {
        onnx.TensorProto.FLOAT,
        onnx.TensorProto.FLOAT16,
        onnx.TensorProto.DOUBLE,
        onnx.TensorProto.BFLOAT16,
    }
)
# Suffixes ONNX Runtime's quantizer appends to the tensor it quantizes.
_QDQ_SUFFIXES = (
    "_QuantizeLinear_Input",
    "_QuantizeLinear_Output",
    "_DequantizeLinear_Output",
    "_quantized",
)
# A parameter named by its module path: "features.0.weight", "layers.1.conv1.bias".
_PARAM_NAME = re.compile(r"^(?:p_)?([A-Za-z_]\w*(?:\.\w+)*)\.(weight|bias)$")


@dataclass
class TensorMatch:
    """One float activation and the tensor of the other graph compared with it."""

    float_tensor: str
    other_tensor: str
    """The tensor of the other graph compared: the DQ output after a Q/DQ pair."""
    matched_by: str
    """"name", "qdq", "node-name" or "order"."""
    node: str | None
    """Name of the node producing it in the other graph (None for graph inputs)."""
    op_type: str
    float_node: str | None
    """Name of the node producing it in the float graph (None for graph inputs)."""
    inputs: list[str] = field(default_factory=list)
    """Float names of the matched activations the producing node reads."""
    requantized: bool = False
    """True when a QuantizeLinear sits between the producer and the compared tensor."""
    chain: list[str] = field(default_factory=list)
    """Tensors of the other graph from the producer's output to `other_tensor`, inclusive."""
    twin_node: str | None = None
    """The float-graph node that became `node` (a Conv whose Relu was folded into it, not the
    Relu producing `float_tensor`): the name `nnship quantize --exclude` takes."""


@dataclass
class LayerMatching:
    """Result of `match_layers`: the matches and how much of the float graph they cover."""

    matches: list[TensorMatch]
    float_tensors: list[str]
    """Every float activation (graph inputs and node outputs fed by them), in graph order."""

    graph_inputs: frozenset[str] = frozenset()

    @property
    def coverage(self) -> float:
        """Fraction of the float node outputs (graph inputs left out) that were matched."""
        produced = [t for t in self.float_tensors if t not in self.graph_inputs]
        if not produced:
            return 0.0
        found = {m.float_tensor for m in self.matches}
        return sum(t in found for t in produced) / len(produced)

    def counts(self) -> dict[str, int]:
        """Matches per method ("name", "qdq", "node-name", "order")."""
        out: dict[str, int] = defaultdict(int)
        for m in self.matches:
            out[m.matched_by] += 1
        return dict(out)


def value_types(model: onnx.ModelProto) -> dict[str, int]:
    """Tensor name -> ONNX element type, from shape inference (missing when unknown)."""
    return tensor_types(model)


def activations(model: onnx.ModelProto) -> dict[str, onnx.NodeProto | None]:
    """Float tensors computed from the graph inputs, in graph (topological) order, each with
    its producing node (None for graph inputs). Constant-only subgraphs, shapes and integer
    tensors (QuantizeLinear outputs, ids) are left out; tensors of unknown type are kept."""
    types = value_types(model)
    inits = {i.name for i in model.graph.initializer}
    live: dict[str, onnx.NodeProto | None] = {
        v.name: None for v in model.graph.input if v.name not in inits
    }
    dynamic = set(live)
    for node in model.graph.node:
        if node.op_type in _NON_ACTIVATION_OPS or not any(i in dynamic for i in node.input):
            continue
        for out in node.output:
            if out:
                dynamic.add(out)
                live[out] = node
    return {n: node for n, node in live.items() if types.get(n, 0) in FLOAT_TYPES | {0}}


@dataclass
class _Chain:
    """A tensor of the other graph followed through its Q/DQ/Cast re-encodings."""

    names: list[str]
    node: onnx.NodeProto | None
    compared: str
    """The last float tensor of the chain: what the consumers downstream read."""
    requantized: bool


def _chains(model: onnx.ModelProto) -> tuple[list[_Chain], dict[str, int]]:
    """Chains of the other graph, and for every tensor in a chain, the chain's index."""
    live = activations(model)
    consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in model.graph.node:
        for name in node.input:
            consumers[name].append(node)
    chains: list[_Chain] = []
    index: dict[str, int] = {}
    for name, node in live.items():
        if node is not None and node.op_type in TRANSPARENT_OPS:
            continue
        names, compared, requantized = [name], name, False
        while True:
            passes = [c for c in consumers.get(name, []) if c.op_type in TRANSPARENT_OPS]
            if len(passes) != 1 or not passes[0].output or passes[0].output[0] in index:
                break
            name = passes[0].output[0]
            names.append(name)
            if passes[0].op_type == "QuantizeLinear":
                requantized = True  # integer: not comparable, keep the last float name
            else:
                compared = name
        chain = _Chain(names, node, compared, requantized)
        for n in chain.names:
            index[n] = len(chains)
        chains.append(chain)
    return chains, index


def _strip_suffixes(name: str) -> str:
    for suffix in _QDQ_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def match_layers(float_model: onnx.ModelProto, other: onnx.ModelProto) -> LayerMatching:
    """Match every float activation to a tensor of `other` (see the module docstring)."""
    float_live = activations(float_model)
    float_tensors = list(float_live)
    unclaimed = set(float_tensors)
    chains, index = _chains(other)
    found: dict[int, tuple[str, str]] = {}

    def claim(ci: int, tensor: str, how: str) -> None:
        found[ci] = (tensor, how)
        unclaimed.discard(tensor)

    for ci, chain in enumerate(chains):  # 1-2: names, directly or through Q/DQ
        for name in chain.names:
            for candidate in dict.fromkeys((name, _strip_suffixes(name))):
                if candidate in unclaimed:
                    claim(ci, candidate, "name" if candidate == chain.compared else "qdq")
                    break
            if ci in found:
                break
    float_nodes = {n.name: n for n in float_model.graph.node if n.name}
    for ci, chain in enumerate(chains):  # 3: node kept under its name, output renamed
        node = chain.node
        if ci in found or node is None or node.name not in float_nodes:
            continue
        twin = float_nodes[node.name]
        if twin.op_type != node.op_type:
            continue
        pos = list(node.output).index(chain.names[0])
        if pos < len(twin.output) and twin.output[pos] in unclaimed:
            claim(ci, twin.output[pos], "node-name")
    _match_by_order(float_model, other, chains, found, float_live, claim)
    matches = [_to_match(ci, chains, index, found, float_live) for ci in sorted(found)]
    inputs = frozenset(n for n, node in float_live.items() if node is None)
    return LayerMatching(matches, float_tensors, inputs)


def _consumers(model: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    users: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in model.graph.node:
        for name in node.input:
            users[name].append(node)
    return users


def _match_by_order(
    float_model: onnx.ModelProto,
    other: onnx.ModelProto,
    chains: list[_Chain],
    found: dict[int, tuple[str, str]],
    float_live: dict[str, onnx.NodeProto | None],
    claim: Callable[[int, str, str], None],
) -> None:
    """Pair the remaining nodes of each (op type, output index) in graph order when both
    graphs have as many. A Relu/Clip the artifact folded into its producer (QDQ quantizers and
    ONNX Runtime do) is followed on the float side, so a Conv is compared after its Relu."""
    f_users, o_users = _consumers(float_model), _consumers(other)
    claimed = {tensor for tensor, _ in found.values()}
    left: dict[tuple[str, int], list[int]] = defaultdict(list)
    for ci, chain in enumerate(chains):
        if ci not in found and chain.node is not None:
            pos = list(chain.node.output).index(chain.names[0])
            left[(chain.node.op_type, pos)].append(ci)
    right: dict[tuple[str, int], list[str]] = defaultdict(list)
    for name, node in float_live.items():
        if name not in claimed and node is not None:
            right[(node.op_type, list(node.output).index(name))].append(name)
    for key, cis in left.items():
        if len(cis) != len(right.get(key, [])):
            continue
        for ci, name in zip(cis, right[key]):
            folded = any(u.op_type in _FOLDABLE for n in chains[ci].names for u in o_users[n])
            users = f_users.get(name, [])
            if not folded and len(users) == 1 and users[0].op_type in _FOLDABLE:
                after = users[0].output[0]
                name = after if after not in claimed else name
            claim(ci, name, "order")
            claimed.add(name)


def _to_match(
    ci: int,
    chains: list[_Chain],
    index: dict[str, int],
    found: dict[int, tuple[str, str]],
    float_live: dict[str, onnx.NodeProto | None],
) -> TensorMatch:
    chain = chains[ci]
    tensor, how = found[ci]
    inputs: list[str] = []
    if chain.node is not None:
        for name in chain.node.input:
            src = index.get(name)
            if src is not None and src in found and found[src][0] not in inputs:
                inputs.append(found[src][0])
    float_node = float_live.get(tensor)
    node = chain.node
    twin = float_node
    if node is not None and node.op_type not in _FOLDABLE:
        while twin is not None and twin.op_type in _FOLDABLE and twin.op_type != node.op_type:
            twin = float_live.get(twin.input[0])
    return TensorMatch(
        float_tensor=tensor,
        other_tensor=chain.compared,
        matched_by=how,
        node=(node.name or None) if node is not None else None,
        op_type=node.op_type if node is not None else "Input",
        float_node=(float_node.name or None) if float_node is not None else None,
        inputs=inputs,
        requantized=chain.requantized,
        chain=chain.names[: chain.names.index(chain.compared) + 1],
        twin_node=(twin.name or None) if twin is not None and node is not None else None,
    )


def torch_module_names(model: onnx.ModelProto) -> dict[str, str]:
    """Node name -> PyTorch module path ("layers.0.conv1") for nodes exported from torch.

    Sources, best first: the node's parameter names (`features.0.weight`, kept by both
    exporters and by onnxslim, and naming the Conv rather than a BatchNorm fused into it), the
    dynamo exporter's `pkg.torch.onnx.name_scopes` / `namespace` metadata, then TorchScript
    node names (`/layers/layers.0/conv1/Conv`). Nodes without any of these are left out.
    """
    inits = {i.name for i in model.graph.initializer}
    out: dict[str, str] = {}
    for node in model.graph.node:
        if not node.name:
            continue
        module = _from_params(node, inits) or _from_metadata(node) or _from_scoped_name(node.name)
        if module:
            out[node.name] = module
    return out


def _from_params(node: onnx.NodeProto, inits: set[str]) -> str | None:
    for name in node.input:
        # ORT's quantizer keeps the float name as a prefix: "features.0.weight_quantized"
        base = _strip_suffixes(name)
        match = _PARAM_NAME.match(base)
        if match and (name in inits or base != name):
            return match.group(1)
    return None


def _from_metadata(node: onnx.NodeProto) -> str | None:
    props = {p.key: p.value for p in node.metadata_props}
    scopes = props.get("pkg.torch.onnx.name_scopes")
    if scopes:
        try:
            parts = [str(p) for p in ast.literal_eval(scopes)]
        except (ValueError, SyntaxError):
            parts = []
        # the last scope is the op itself ("conv2d_1"); the one before is the module path
        modules = [p for p in parts[:-1] if p]
        if modules:
            return modules[-1]
    namespace = props.get("namespace")
    if namespace:
        names = [seg.split(":", 1)[0].strip() for seg in namespace.split("/")]
        modules = [n for n in names[:-1] if n]
        if modules:
            return modules[-1]
    return None


def _from_scoped_name(name: str) -> str | None:
    # TorchScript: "/layers/layers.0/conv1/Conv" -> "layers.0.conv1"; the last part is the op.
    if not name.startswith("/"):
        return None
    parts = [p for p in name.strip("/").split("/") if p][:-1]
    path = ""
    for part in parts:  # scopes repeat their parent's path ("layers", "layers.0") or not ("conv1")
        path = part if not path or part.startswith(path + ".") else f"{path}.{part}"
    return path or None
