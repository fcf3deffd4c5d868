"""Cross-layer equalization (CLE) of Conv -> activation -> Conv chains in an ONNX graph.

Nagel et al. 2019, "Data-Free Quantization Through Weight Equalization and Bias Correction"
(arXiv:1906.04721), section 4.1: for a pair `y = W2 f(W1 x + b1)` with `f` positive
scale-equivariant (`f(x / s) = f(x) / s` for `s > 0`), scaling output channel `i` of the first
layer by `1 / s_i` and input channel `i` of the second by `s_i` leaves the function unchanged.
`s_i = sqrt(r1_i / r2_i)` makes both per-channel weight ranges `sqrt(r1_i * r2_i)`, which
equalizes the channels' ranges so per-tensor (and per-channel after a depthwise conv) weight
quantization loses less. Chains of more than two layers are swept until the scales settle.

Why hand-written: ONNX Runtime's quantization tooling has no CLE, and NNCF's works on its own
graph representation; this pass edits initializers only and keeps the graph's structure.

Equivariance is required, so the activation decides:
- Relu, LeakyRelu, PRelu with one slope, Clip with min 0 and no max, Identity, or no activation:
  equalized.
- Clip with a finite max (ReLU6) is *not* equivariant: `Clip(x / s, 0, 6) = Clip(x, 0, 6 s) / s`,
  so scaling channel `i` would need the bound `6 s_i` for that channel, which ONNX's Clip (one
  scalar bound) cannot hold, and a per-channel `Min` would stay a float op the runtimes do not
  fuse. By default (`bounded_relu="skip"`) such pairs are skipped with that reason and the
  float model's outputs never change. With `bounded_relu="relu"` the Clip(0, b) is replaced by
  Relu and the pair is equalized, as AIMET's CLE does (it swaps ReLU6 for ReLU first) and as
  Nagel et al. did for MobileNetV2 (sec. 5.1); this *changes the float function* wherever a
  pre-activation exceeded `b`, so a caller must measure the result against the original float
  model (nnship's quantize pipeline does, on evaluation data). Every replaced node is listed
  in the report.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

log = logging.getLogger(__name__)

_EQUIVARIANT = {"Relu", "LeakyRelu", "Identity"}


@dataclass
class EqualizedPair:
    """One equalized pair: node names, the activation between them, channel count, the range
    of applied scales, and the spread (max/min) of the first conv's per-channel weight ranges
    before and after."""

    first: str
    second: str
    activation: str
    channels: int
    scale_min: float
    scale_max: float
    spread_before: float
    spread_after: float


@dataclass
class EqualizeReport:
    """What `cross_layer_equalize` did: equalized pairs, and candidate pairs it skipped (node,
    reason)."""

    pairs: list[EqualizedPair] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    sweeps: int = 0
    replaced: list[str] = field(default_factory=list)
    """Clip(0, b) nodes replaced by Relu (`bounded_relu="relu"`): the float function changed."""

    @property
    def applied(self) -> bool:
        return bool(self.pairs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "transform": "cross_layer_equalization",
            "applied": self.applied,
            "sweeps": self.sweeps,
            "pairs": [asdict(p) for p in self.pairs],
            "replaced_bounded_relu": list(self.replaced),
            "skipped": [{"node": n, "reason": r} for n, r in self.skipped],
        }


@dataclass
class _Pair:
    first: onnx.NodeProto
    second: onnx.NodeProto
    activation: str
    clip: onnx.NodeProto | None = None  # a Clip(0, b) to replace by Relu


def _clip_bounds(node: onnx.NodeProto, consts: dict[str, np.ndarray]) -> tuple[float, float] | None:
    inputs = list(node.input) + ["", ""]
    if len(node.input) < 2:  # opset < 11: bounds are attributes
        return float(_attr(node, "min", -np.inf)), float(_attr(node, "max", np.inf))
    lo_name, hi_name = inputs[1], inputs[2]
    if (lo_name and lo_name not in consts) or (hi_name and hi_name not in consts):
        return None
    lo = float(consts[lo_name]) if lo_name else -np.inf
    hi = float(consts[hi_name]) if hi_name else np.inf
    return lo, hi


def _attr(node: onnx.NodeProto, name: str, default: Any) -> Any:
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _clip_is_relu(node: onnx.NodeProto, consts: dict[str, np.ndarray]) -> tuple[bool, str]:
    """A Clip with min 0 and no (or infinite) max is a Relu; otherwise say why not."""
    inputs = list(node.input) + ["", ""]
    lo_name, hi_name = inputs[1], inputs[2]
    if len(node.input) < 2:  # opset < 11: bounds are attributes
        lo = float(_attr(node, "min", -np.inf))
        hi = float(_attr(node, "max", np.inf))
    else:
        if (lo_name and lo_name not in consts) or (hi_name and hi_name not in consts):
            return False, "Clip with non-constant bounds"
        lo = float(consts[lo_name]) if lo_name else -np.inf
        hi = float(consts[hi_name]) if hi_name else np.inf
    if lo == 0.0 and np.isinf(hi):
        return True, ""
    return False, (
        f"Clip({lo:g}, {hi:g}) is not positive scale-equivariant (Clip(x/s) != Clip(x)/s, "
        "e.g. ReLU6): equalizing through it would change the outputs"
    )


def _find_pairs(
    model: onnx.ModelProto,
    consts: dict[str, np.ndarray],
    report: EqualizeReport,
    bounded_relu: str = "skip",
) -> list[_Pair]:
    graph = model.graph
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}

    def single_consumer(tensor: str) -> onnx.NodeProto | None:
        nodes = consumers.get(tensor, [])
        return nodes[0] if len(nodes) == 1 and tensor not in outputs else None

    pairs = []
    for first in graph.node:
        if first.op_type != "Conv" or len(first.input) < 2 or first.input[1] not in consts:
            continue
        nxt = single_consumer(first.output[0])
        if nxt is None:
            continue
        activation, clip = "none", None
        if nxt.op_type in _EQUIVARIANT or (nxt.op_type == "PRelu" and nxt.input[1] in consts
                                            and consts[nxt.input[1]].size == 1):  # fmt: skip
            activation, nxt = nxt.op_type, single_consumer(nxt.output[0])
        elif nxt.op_type == "Clip":
            ok, why = _clip_is_relu(nxt, consts)
            bounds = _clip_bounds(nxt, consts)
            if not ok and bounded_relu == "relu" and bounds and bounds[0] == 0 < bounds[1]:
                activation, clip = f"Clip(0, {bounds[1]:g}) -> Relu", nxt
                nxt = single_consumer(nxt.output[0])
            elif not ok:
                after = single_consumer(nxt.output[0])
                if after is not None and after.op_type == "Conv":
                    report.skipped.append((first.name or first.output[0], why))
                continue
            else:
                activation, nxt = "Clip(0, inf)", single_consumer(nxt.output[0])
        if nxt is None or nxt.op_type != "Conv" or nxt.input[0] == first.input[0]:
            continue
        if len(nxt.input) < 2 or nxt.input[1] not in consts:
            report.skipped.append((nxt.name, "second Conv has a non-constant weight"))
            continue
        w1, w2 = consts[first.input[1]], consts[nxt.input[1]]
        if w1.shape[0] != int(_attr(nxt, "group", 1)) * w2.shape[1]:
            report.skipped.append((first.name, "channel counts of the pair differ"))
            continue
        pairs.append(_Pair(first, nxt, activation, clip))
    return pairs


def _replace_clips(graph: onnx.GraphProto, pairs: list[_Pair], report: EqualizeReport) -> None:
    """Clip(0, b) -> Relu between the pairs that need it (same name, input and output)."""
    for p in pairs:
        if p.clip is None:
            continue
        relu = helper.make_node("Relu", [p.clip.input[0]], list(p.clip.output), name=p.clip.name)
        p.clip.CopyFrom(relu)
        report.replaced.append(p.clip.name or p.clip.output[0])


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Values of initializers, Constant outputs, and Identity of those (torch's exporter
    shares equal initializers through Identity nodes)."""
    consts = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            value = next((a for a in node.attribute if a.name == "value"), None)
            if value is not None:
                consts[node.output[0]] = numpy_helper.to_array(value.t)
        elif node.op_type == "Identity" and node.input[0] in consts:
            consts[node.output[0]] = consts[node.input[0]]
    return consts


def _privatize(graph: onnx.GraphProto, pairs: list[_Pair], consts: dict[str, np.ndarray]) -> None:
    """Give every weight/bias the pairs rescale its own initializer read by one node only, so
    scaling it cannot touch another node (shared, Identity or Constant sources stay as they
    are for their other readers)."""
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    initializers = {i.name for i in graph.initializer}
    seen: set[tuple[str, int]] = set()
    for p in pairs:
        slots = [(p.first, 1), (p.second, 1)]
        if len(p.first.input) > 2 and p.first.input[2]:
            slots.append((p.first, 2))
        for node, index in slots:
            key = (node.output[0], index)
            name = node.input[index]
            if key in seen or (name in initializers and readers.get(name, 0) == 1):
                seen.add(key)
                continue
            fresh = f"{name}_cle_{node.name or node.output[0]}"
            graph.initializer.append(numpy_helper.from_array(consts[name], fresh))
            consts[fresh] = consts[name]
            node.input[index] = fresh
            seen.add(key)


def _input_channel_view(w2: np.ndarray, group: int) -> tuple[np.ndarray, int]:
    """Per input channel of a grouped Conv weight `[Cout, Cin/g, ...]`: absolute max over the
    weights that read it, and `Cin`."""
    cout, cin_g = w2.shape[0], w2.shape[1]
    per_group = w2.reshape(group, cout // group, cin_g, -1)
    r2 = np.abs(per_group).max(axis=(1, 3)).reshape(group * cin_g)
    return r2, group * cin_g


def _scale_inputs(w2: np.ndarray, group: int, s: np.ndarray) -> np.ndarray:
    cout, cin_g = w2.shape[0], w2.shape[1]
    view = w2.reshape(group, cout // group, cin_g, -1)
    view = view * s.reshape(group, 1, cin_g, 1)
    return view.reshape(w2.shape)


def _spread(r: np.ndarray) -> float:
    positive = r[r > 0]
    return float(positive.max() / positive.min()) if positive.size else 1.0


def cross_layer_equalize(
    model: onnx.ModelProto,
    *,
    max_sweeps: int = 20,
    tolerance: float = 1e-3,
    bounded_relu: str = "skip",
) -> tuple[onnx.ModelProto, EqualizeReport]:
    """Equalize every Conv -> (Relu | LeakyRelu | Clip(0, inf) | nothing) -> Conv pair,
    depthwise and grouped convs included. Returns a new model (the input is not modified) and
    a report. Only initializers change; the float outputs are equal up to rounding.

    Pairs are swept until no scale moves more than `tolerance` (relative; defaults to 1e-3)
    or `max_sweeps` (defaults to 20) is reached. Weights must be constant (initializers,
    Constant nodes, or Identity of those; shared ones get a private copy); BatchNorm must
    already be folded into the convs. `bounded_relu` says what to do with a Clip(0, b)
    (ReLU6) between a pair: "skip" the pair (default; exact) or replace it by "relu" and
    equalize (changes the float function where inputs exceed `b`; see the module docstring).
    """
    if bounded_relu not in ("skip", "relu"):
        raise ValueError(f"bounded_relu must be 'skip' or 'relu', not {bounded_relu!r}")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    consts = _constants(out.graph)
    report = EqualizeReport()
    pairs = _find_pairs(out, consts, report, bounded_relu)
    if not pairs:
        return out, report
    _replace_clips(out.graph, pairs, report)
    _privatize(out.graph, pairs, consts)
    inits = {i.name: i for i in out.graph.initializer}
    weights = {n: consts[n].astype(np.float64) for p in pairs for n in _pair_weights(p)}
    totals = {id(p): np.ones(consts[p.first.input[1]].shape[0]) for p in pairs}
    before = {id(p): _spread(np.abs(weights[p.first.input[1]]).reshape(
        weights[p.first.input[1]].shape[0], -1).max(axis=1)) for p in pairs}  # fmt: skip
    for sweep in range(1, max_sweeps + 1):
        moved = 0.0
        for p in pairs:
            w1, w2 = weights[p.first.input[1]], weights[p.second.input[1]]
            group = int(_attr(p.second, "group", 1))
            r1 = np.abs(w1).reshape(w1.shape[0], -1).max(axis=1)
            r2, _ = _input_channel_view(w2, group)
            s = np.ones_like(r1)
            ok = (r1 > 0) & (r2 > 0)
            s[ok] = np.sqrt(r1[ok] / r2[ok])
            weights[p.first.input[1]] = w1 / s.reshape(-1, *([1] * (w1.ndim - 1)))
            if len(p.first.input) > 2 and p.first.input[2]:
                weights[p.first.input[2]] = weights[p.first.input[2]] / s
            weights[p.second.input[1]] = _scale_inputs(w2, group, s)
            totals[id(p)] = totals[id(p)] * s
            moved = max(moved, float(np.max(np.abs(s - 1.0))))
        report.sweeps = sweep
        if moved < tolerance:
            break
    for name, value in weights.items():
        inits[name].CopyFrom(numpy_helper.from_array(value.astype(consts[name].dtype), name))
    for p in pairs:
        total = totals[id(p)]
        w1 = weights[p.first.input[1]]
        report.pairs.append(
            EqualizedPair(
                first=p.first.name,
                second=p.second.name,
                activation=p.activation,
                channels=int(w1.shape[0]),
                scale_min=float(total.min()),
                scale_max=float(total.max()),
                spread_before=before[id(p)],
                spread_after=_spread(np.abs(w1).reshape(w1.shape[0], -1).max(axis=1)),
            )
        )
    log.info("equalized %d conv pair(s) in %d sweep(s)", len(report.pairs), report.sweeps)
    return out, report


def _pair_weights(p: _Pair) -> list[str]:
    names = [p.first.input[1], p.second.input[1]]
    if len(p.first.input) > 2 and p.first.input[2]:
        names.append(p.first.input[2])
    return names
