"""SmoothQuant-style activation smoothing of MatMul/Gemm inputs in an ONNX graph.

Xiao et al. 2022, "SmoothQuant: Accurate and Efficient Post-Training Quantization for Large
Language Models" (arXiv:2211.10438), section 4: transformer activations have a few channels
with large magnitude, which makes per-tensor activation quantization coarse; weights are easy.
For `Y = X W`, dividing input channel `j` of `X` by `s_j` and multiplying row `j` of `W` by
`s_j` keeps `Y` exact and moves the difficulty to the weights (quantized per output channel):
`s_j = max|X_j|**alpha / max|W_j|**(1 - alpha)` (eq. 4), `alpha` defaults to 0.5.

`max|X_j|` comes from the calibration table's per-channel statistics (`channel_abs_max`,
recorded by `collect_statistics` for every MatMul/Gemm input). `X / s` is realized
- by folding `1 / s` into the preceding LayerNormalization's scale and bias when every
  consumer of its output is a smoothed MatMul/Gemm (no new node, as in the paper), or
- by inserting one `Mul(X, 1 / s)` in front of the MatMul/Gemm consumers otherwise (e.g. a
  post-LayerNorm BERT, whose LayerNorm output also feeds the residual Add).
Activations change, so statistics must be collected again on the smoothed model.

Why hand-written: ONNX Runtime's quantizer has SmoothQuant only through Intel Neural Compressor
(another heavy dependency) and NNCF applies it to its own graph; this pass is small.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from nnship.calibration.table import CalibrationTable
from nnship.core.errors import CalibrationError

log = logging.getLogger(__name__)


@dataclass
class SmoothedTensor:
    """One smoothed activation: the tensor, its MatMul/Gemm consumers, how `1/s` was applied,
    the applied scale range, and max|x| / the per-channel spread (max/min of per-channel
    max|x|) before and after."""

    tensor: str
    nodes: list[str]
    mode: str
    scale_min: float
    scale_max: float
    abs_max_before: float
    abs_max_after: float
    spread_before: float
    spread_after: float
    alpha: float | None = None


@dataclass
class SmoothReport:
    """What `smooth_activations` did; `skipped` lists (node or tensor, reason). `alpha` is the
    one migration strength, or "per-layer" when a search chose one per tensor (`search`
    holds its records)."""

    alpha: float | str
    smoothed: list[SmoothedTensor] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    search: list[dict[str, Any]] = field(default_factory=list)

    @property
    def applied(self) -> bool:
        return bool(self.smoothed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "transform": "smoothquant",
            "alpha": self.alpha,
            "applied": self.applied,
            "smoothed": [asdict(s) for s in self.smoothed],
            "skipped": [{"name": n, "reason": r} for n, r in self.skipped],
            "search": self.search,
            "note": "activations changed: collect statistics again on the smoothed model",
        }


def _attr(node: onnx.NodeProto, name: str, default: Any) -> Any:
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _weight_rows(node: onnx.NodeProto, w: np.ndarray) -> np.ndarray | None:
    """The weight as `[K, N]` (rows = input channels of X), or None when not smoothable."""
    if w.ndim != 2:
        return None
    if node.op_type == "Gemm" and int(_attr(node, "transB", 0)):
        return w.T
    return w


def _spread(values: np.ndarray) -> float:
    positive = values[values > 0]
    return float(positive.max() / positive.min()) if positive.size else 1.0


def smoothing_groups(
    model: onnx.ModelProto, skipped: list[tuple[str, str]] | None = None
) -> dict[str, list[onnx.NodeProto]]:
    """Activation tensor -> the MatMul/Gemm nodes that read it as X with a constant 2-D weight
    (the candidates of smoothing); nodes that cannot be smoothed go to `skipped` with why."""
    skipped = skipped if skipped is not None else []
    inits = {i.name: i for i in model.graph.initializer}
    groups: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        if node.op_type not in ("MatMul", "Gemm") or len(node.input) < 2:
            continue
        label = node.name or node.output[0]
        if node.input[1] not in inits:
            skipped.append((label, f"{node.op_type} with non-constant B"))
        elif node.op_type == "Gemm" and int(_attr(node, "transA", 0)):
            skipped.append((label, "Gemm with transA=1"))
        elif numpy_helper.to_array(inits[node.input[1]]).ndim != 2:
            skipped.append((label, f"{node.op_type} weight is not 2-D"))
        elif node.input[0] in inits:
            skipped.append((label, "both operands are constant"))
        else:
            groups.setdefault(node.input[0], []).append(node)
    return groups


def smoothing_scales(
    channel_abs_max: np.ndarray, weights: list[np.ndarray], alpha: float
) -> np.ndarray:
    """SmoothQuant's per-channel factor (Xiao et al. 2022, eq. 4):
    `s_j = max|X_j|**alpha / max|W_j|**(1 - alpha)`, the weight maximum taken over the rows `j`
    of every `[K, N]` weight that reads X; clipped to [1e-5, 1e5]."""
    act = np.maximum(channel_abs_max, 1e-5)
    w_max = np.maximum(np.max([np.abs(w).max(axis=1) for w in weights], axis=0), 1e-5)
    return np.clip(act**alpha / w_max ** (1.0 - alpha), 1e-5, 1e5)


def group_weights(model: onnx.ModelProto, nodes: list[onnx.NodeProto]) -> list[np.ndarray] | None:
    """The `[K, N]` weights of `nodes`, or None when one is not a 2-D constant."""
    inits = {i.name: i for i in model.graph.initializer}
    found = [_weight_rows(n, numpy_helper.to_array(inits[n.input[1]])) for n in nodes]
    return None if any(w is None for w in found) else found  # type: ignore[return-value]


def smooth_activations(
    model: onnx.ModelProto,
    table: CalibrationTable,
    alpha: float = 0.5,
    *,
    alphas: Mapping[str, float | None] | None = None,
    insert_mul: bool = True,
) -> tuple[onnx.ModelProto, SmoothReport]:
    """Smooth every float activation that feeds MatMul/Gemm nodes with constant 2-D weights.

    `alpha` (0..1, defaults to 0.5) is the migration strength. `alphas`, when given, is one
    strength per activation tensor (a search's choice, see `smooth_search`); a tensor it maps
    to None or does not list is left alone. `insert_mul` (default True)
    allows inserting a Mul where no LayerNormalization can absorb `1/s`. Returns a new model
    (the input is not modified) and a report; the float outputs are equal up to rounding.
    Tensors the table marks degenerate or holds no per-channel statistics for are skipped.
    """
    if not 0.0 <= alpha <= 1.0:
        raise CalibrationError(f"SmoothQuant alpha must be in [0, 1], got {alpha}")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    report = SmoothReport(alpha=alpha if alphas is None else "per-layer")
    inits = {i.name: i for i in graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    producer: dict[str, onnx.NodeProto] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
        for name in node.output:
            producer[name] = node
    degenerate = table.degenerate_tensors()
    groups = smoothing_groups(out, report.skipped)
    outputs = {o.name for o in graph.output}
    for tensor, nodes in groups.items():
        reason = _group_problem(tensor, table, degenerate)
        strength = alpha if alphas is None else alphas.get(tensor)
        if reason is None and strength is None:
            reason = "per-layer search: smoothing does not lower this layer's output error"
        if reason:
            report.skipped.append((tensor, reason))
            continue
        assert strength is not None
        stats = table[tensor]
        channel = stats.channel_abs_max
        assert channel is not None
        found = group_weights(out, nodes)
        if found is None or any(r.shape[0] != channel.shape[0] for r in found):
            report.skipped.append((tensor, "weight rows do not match the activation's channels"))
            continue
        s = smoothing_scales(channel, found, strength)
        for node in nodes:
            _scale_weight_rows(graph, inits, consumers, node, s)
        ln = producer.get(tensor)
        only_ours = all(c in nodes for c in consumers.get(tensor, [])) and tensor not in outputs
        if (
            ln is not None
            and ln.op_type == "LayerNormalization"
            and only_ours
            and _fold_ln(graph, inits, consumers, ln, s)
        ):
            mode = f"folded into LayerNormalization '{ln.name}'"
        elif insert_mul:
            mode = f"inserted Mul '{_insert_mul(graph, tensor, nodes, s, stats.dtype)}'"
        else:
            report.skipped.append((tensor, "no LayerNormalization to fold into (insert_mul off)"))
            for node in nodes:  # undo: the pair must stay equivalent
                _scale_weight_rows(graph, inits, consumers, node, 1.0 / s)
            continue
        report.smoothed.append(
            SmoothedTensor(
                tensor=tensor,
                nodes=[n.name or n.output[0] for n in nodes],
                mode=mode,
                scale_min=float(s.min()),
                scale_max=float(s.max()),
                abs_max_before=float(channel.max()),
                abs_max_after=float((channel / s).max()),
                spread_before=_spread(channel),
                spread_after=_spread(channel / s),
                alpha=strength,
            )
        )
    log.info("smoothed %d activation(s) (alpha %s)", len(report.smoothed), report.alpha)
    return out, report


def _group_problem(tensor: str, table: CalibrationTable, degenerate: dict[str, str]) -> str | None:
    if tensor not in table:
        return "no statistics for this tensor in the calibration table"
    if tensor in degenerate:
        return f"degenerate range: {degenerate[tensor]}"
    stats = table[tensor]
    if stats.channel_abs_max is None:
        return "no per-channel statistics (collect the table again with this nnship version)"
    return None


def _own_initializer(
    graph: onnx.GraphProto,
    inits: dict[str, onnx.TensorProto],
    consumers: dict[str, list[onnx.NodeProto]],
    node: onnx.NodeProto,
    index: int,
) -> str:
    """Name of an initializer only `node` reads at input `index` (copied if it was shared)."""
    name = node.input[index]
    if len(consumers.get(name, [])) <= 1:
        return name
    fresh = f"{name}_smooth_{node.name or node.output[0]}"
    copy = numpy_helper.from_array(numpy_helper.to_array(inits[name]), fresh)
    graph.initializer.append(copy)
    inits[fresh] = graph.initializer[-1]
    consumers[name].remove(node)
    consumers[fresh] = [node]
    node.input[index] = fresh
    return fresh


def _scale_weight_rows(
    graph: onnx.GraphProto,
    inits: dict[str, onnx.TensorProto],
    consumers: dict[str, list[onnx.NodeProto]],
    node: onnx.NodeProto,
    s: np.ndarray,
) -> None:
    name = _own_initializer(graph, inits, consumers, node, 1)
    w = numpy_helper.to_array(inits[name])
    transposed = node.op_type == "Gemm" and int(_attr(node, "transB", 0))
    scaled = w * (s[None, :] if transposed else s[:, None])
    inits[name].CopyFrom(numpy_helper.from_array(scaled.astype(w.dtype), name))


def _fold_ln(
    graph: onnx.GraphProto,
    inits: dict[str, onnx.TensorProto],
    consumers: dict[str, list[onnx.NodeProto]],
    ln: onnx.NodeProto,
    s: np.ndarray,
) -> bool:
    """Divide LayerNormalization's scale (and bias) by `s`; False if they are not constant
    per-channel vectors over the last axis."""
    if int(_attr(ln, "axis", -1)) != -1 or len(ln.output) > 1 and any(ln.output[1:]):
        return False
    params = [i for i in list(ln.input[1:3]) if i]
    if not params or any(p not in inits for p in params):
        return False
    if any(tuple(inits[p].dims) != s.shape for p in params):
        return False
    for index, _ in enumerate(params, start=1):
        name = _own_initializer(graph, inits, consumers, ln, index)
        value = numpy_helper.to_array(inits[name])
        inits[name].CopyFrom(numpy_helper.from_array((value / s).astype(value.dtype), name))
    return True


def _insert_mul(
    graph: onnx.GraphProto, tensor: str, nodes: list[onnx.NodeProto], s: np.ndarray, dtype: str
) -> str:
    """Insert `Mul(tensor, 1/s)` before the first of `nodes` and rewire them to its output."""
    base = tensor.replace("/", "_").strip("_")
    scale_name, out_name, node_name = f"{base}_smooth_scale", f"{base}_smoothed", f"{base}_Smooth"
    graph.initializer.append(numpy_helper.from_array((1.0 / s).astype(dtype), scale_name))
    mul = helper.make_node("Mul", [tensor, scale_name], [out_name], name=node_name)
    for node in nodes:
        node.input[0] = out_name
    ours = {n.output[0] for n in nodes}
    position = min(i for i, n in enumerate(graph.node) if n.output and n.output[0] in ours)
    graph.node.insert(position, mul)
    return node_name
