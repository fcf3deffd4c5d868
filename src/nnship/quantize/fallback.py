"""Accuracy-aware fallback: rank quantized nodes by the error they add, revert the worst to
float until the accuracy budget holds, and report what each revert cost in latency.

Written by hand: ONNX Runtime's quantizer has no budget-driven mixed precision, and NNCF's
accuracy-control works on OpenVINO models, not on the QDQ ONNX every nnship backend consumes.
Sensitivity is the per-node injected noise, in the spirit of per-layer SQNR analysis
(e.g. Nagel et al., "A White Paper on Neural Network Quantization", 2021, sec. 3.7):
relative error power at a node's output minus the worst relative error already present at its
inputs, both measured against the float model on calibration data in one streaming pass.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from nnship.backends.onnxruntime.outputs import Outputs, iter_checked, make_session, run_model
from nnship.core import Batch, DataSource
from nnship.core.errors import QuantizationError
from nnship.onnx.graph import add_outputs
from nnship.quantize.evaluate import budget_misses, compare, median_latency_ms, score
from nnship.quantize.placement import Placement
from nnship.quantize.profiles import ELTWISE_OPS, WEIGHTED_OPS

log = logging.getLogger(__name__)

REVERT_REASON = "reverted: sensitivity"
# Only nodes that compute something are reverted on their own. A follower (Relu/Clip, pools)
# rides on its producer's Q/DQ: "reverting" a Clip after a quantized Conv does not make
# anything float, it takes away the Clip's [0, 6] range from the Conv's output, which is then
# quantized with the Conv's much wider pre-activation range. On EfficientNet-Lite0 the ranking
# put 7 Clips first and reverting the stem's Clip dropped top-1 agreement from 81% to 55%
# (issue 9, point 8). A follower goes float with its producer.
_REVERTIBLE = WEIGHTED_OPS | ELTWISE_OPS
_EPILOGUE = frozenset({"Relu", "Clip", "LeakyRelu"})


def rank_sensitivity(
    float_model: onnx.ModelProto,
    quant_model: onnx.ModelProto,
    placement: Placement,
    data: DataSource,
    *,
    max_samples: int = 64,
) -> list[tuple[str, float]]:
    """Quantized nodes that compute something (weighted and eltwise ops, not Relu/Clip/pools
    that ride on their producer's Q/DQ) sorted by injected relative error power (largest
    first)."""
    pairs = _seen_by_consumers(float_model, quant_model)
    nodes = {n.name: n for n in float_model.graph.node}
    qnodes = {n.name: n for n in quant_model.graph.node}
    watch: dict[str, tuple[list[tuple[str, str]], list[tuple[str, str]]]] = {}
    candidates = [n for n in placement.nodes if placement.op_types.get(n) in _REVERTIBLE]
    for name in candidates:
        node, qnode = nodes.get(name), qnodes.get(name)
        if node is None or qnode is None:
            continue
        # inputs as this node reads them in each model (the DequantizeLinear output in QDQ)
        ins = [
            (f, q)
            for f, q in zip(node.input, qnode.input)
            if f and q and f in pairs.float_tensors and q in pairs.quant_tensors
        ]
        outs = [pairs.seen[t] for t in _effective_outputs(node, pairs) if t in pairs.seen]
        if outs:
            watch[name] = (ins, outs)
    links = sorted({p for ins, outs in watch.values() for p in ins + outs})
    if not links:
        return [(n, 0.0) for n in candidates]
    f_names = sorted({f for f, _ in links})
    q_names = sorted({q for _, q in links})
    f_sess = make_session(add_outputs(float_model, f_names))
    q_sess = make_session(add_outputs(quant_model, q_names))
    err = dict.fromkeys(links, 0.0)
    power = dict.fromkeys(links, 0.0)
    for inputs, _ in iter_checked(float_model, data, max_samples=max_samples, batch_size=8):
        f_out = dict(zip(f_names, f_sess.run(f_names, inputs)))
        q_out = dict(zip(q_names, q_sess.run(q_names, inputs)))
        for f, q in links:
            ref = f_out[f].astype(np.float64)
            err[(f, q)] += float(((q_out[q] - ref) ** 2).sum())
            power[(f, q)] += float((ref**2).sum())
    tensors = links
    rel = {t: err[t] / max(power[t], 1e-30) for t in tensors}
    scores = {}
    for name, (ins, outs) in watch.items():
        before = max((rel[i] for i in ins), default=0.0)
        scores[name] = max(max(rel[o] for o in outs) - before, 0.0)
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    ranked += [(n, 0.0) for n in candidates if n not in scores]
    return ranked


@dataclass
class _Links:
    """Float tensor -> the QDQ model's tensor its consumers read (a DequantizeLinear output
    where the tensor is quantized), and the tensor names of both models."""

    seen: dict[str, tuple[str, str]]
    float_tensors: set[str]
    quant_tensors: set[str]
    consumers: dict[str, list[onnx.NodeProto]]


def _seen_by_consumers(float_model: onnx.ModelProto, quant_model: onnx.ModelProto) -> _Links:
    """Compare like with like: when ONNX Runtime folds a Clip into its Conv, the QDQ model's
    Conv writes the Clip's output name *unclipped* (the QuantizeLinear after it clips), so
    the tensor of the same name is not what the next layer sees. The input of a consumer
    (same node name in both models, same input slot) is."""
    f_tensors = {o for n in float_model.graph.node for o in n.output}
    f_tensors |= {i.name for i in float_model.graph.input}
    q_tensors = {o for n in quant_model.graph.node for o in n.output}
    q_tensors |= {i.name for i in quant_model.graph.input}
    qnodes = {n.name: n for n in quant_model.graph.node}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    seen: dict[str, tuple[str, str]] = {}
    for node in float_model.graph.node:
        qnode = qnodes.get(node.name)
        for k, tensor in enumerate(node.input):
            consumers.setdefault(tensor, []).append(node)
            if qnode is None or tensor in seen or k >= len(qnode.input):
                continue
            if tensor in f_tensors and qnode.input[k] in q_tensors:
                seen[tensor] = (tensor, qnode.input[k])
    for out in quant_model.graph.output:
        if out.name in f_tensors:
            seen.setdefault(out.name, (out.name, out.name))
    return _Links(seen, f_tensors, q_tensors, consumers)


def _effective_outputs(node: onnx.NodeProto, links: _Links) -> list[str]:
    """The node's outputs, followed through the Relu/Clip that alone consumes each (they fuse
    into the node's Q/DQ, so their output is what the node really delivers)."""
    outs = []
    for tensor in node.output:
        while True:
            readers = links.consumers.get(tensor, [])
            if len(readers) == 1 and readers[0].op_type in _EPILOGUE:
                tensor = readers[0].output[0]
                continue
            break
        outs.append(tensor)
    return outs


@dataclass
class FallbackOutcome:
    model: onnx.ModelProto
    placement: Placement
    metrics: dict[str, float]
    reverted: list[dict[str, Any]] = field(default_factory=list)
    ranking: list[tuple[str, float]] = field(default_factory=list)
    undone: list[dict[str, Any]] = field(default_factory=list)
    """Reverts that were tried and undone because they made the model less faithful."""
    met: bool = True


def accuracy_fallback(
    build: Callable[[dict[str, str]], tuple[onnx.ModelProto, Placement]],
    float_model: onnx.ModelProto,
    start: tuple[onnx.ModelProto, Placement],
    reference: Outputs,
    eval_data: DataSource,
    rank_data: DataSource,
    *,
    max_top1_drop: float | None,
    min_cosine: float | None,
    max_reverted: int = 16,
    sensitivity_samples: int = 64,
    eval_samples: int | None = None,
    latency_batch: Batch | None = None,
    module_names: dict[str, str] | None = None,
    start_metrics: dict[str, float] | None = None,
    raise_on_miss: bool = True,
) -> FallbackOutcome:
    """Revert nodes (most sensitive first) until `budget_misses` is empty.

    `build(force_float)` re-plans and re-writes the Q/DQ model with the given nodes in float.
    Every step is monotone: a revert whose model scores lower on the evaluation data than the
    best model so far (`evaluate.score`: top-1 agreement, then cosine) is undone and recorded
    in `undone`, as NNCF's accuracy control does. So the outcome is never less faithful than
    `start`. At most `max_reverted` reverts are kept and `2 * max_reverted` tried.
    `module_names` (node name -> torch module path) names the reverted nodes for people.
    Raises `QuantizationError` when the budget still misses at the end (naming the best
    figure reached), or when nothing is left to revert (then even the float graph misses it);
    with `raise_on_miss=False` it returns the best outcome instead (`outcome.met` False).
    """
    model, placement = start
    metrics = start_metrics or compare(
        reference, run_model(model, eval_data, max_samples=eval_samples)
    )
    outcome = FallbackOutcome(model, placement, metrics)
    misses = budget_misses(metrics, max_top1_drop, min_cosine)
    if not misses:
        return outcome
    ranking = rank_sensitivity(
        float_model, model, placement, rank_data, max_samples=sensitivity_samples
    )
    outcome.ranking = ranking
    log.info("Budget missed (%s); reverting sensitive nodes", "; ".join(misses))
    names = module_names or {}
    force: dict[str, str] = {}
    op_types = placement.op_types
    latency_before = _latency(model, latency_batch)
    tried = 0
    for node, sensitivity in ranking:
        if len(force) >= max_reverted or tried >= 2 * max_reverted:
            break
        tried += 1
        trial = {**force, node: REVERT_REASON}
        candidate, candidate_plan = build(trial)
        candidate_metrics = compare(
            reference, run_model(candidate, eval_data, max_samples=eval_samples)
        )
        step = {
            "node": node,
            "module": names.get(node),
            "op_type": op_types.get(node, ""),
            "sensitivity": sensitivity,
            "metrics_after": {k: v for k, v in candidate_metrics.items() if k != "samples"},
        }
        if score(candidate_metrics) < score(outcome.metrics):
            step["decision"] = "undone: the model scored lower with this node in float"
            outcome.undone.append(step)
            log.info("revert of %s undone (scored lower)", node)
            continue
        force = trial
        latency_after = _latency(candidate, latency_batch)
        step.update(
            latency_ms_before=latency_before,
            latency_ms_after=latency_after,
            latency_cost_ms=None
            if latency_before is None or latency_after is None
            else latency_after - latency_before,
        )
        outcome.reverted.append(step)
        latency_before = latency_after
        outcome.model, outcome.placement, outcome.metrics = (
            candidate,
            candidate_plan,
            candidate_metrics,
        )
        misses = budget_misses(candidate_metrics, max_top1_drop, min_cosine)
        if not misses:
            return outcome
    misses = budget_misses(outcome.metrics, max_top1_drop, min_cosine)
    outcome.met = False
    if not raise_on_miss:
        return outcome
    if len(force) >= len(ranking):
        raise QuantizationError(
            f"Even the fully float model misses the accuracy budget ({'; '.join(misses)}) after "
            f"reverting all {len(force)} quantized node(s); relax --max-top1-drop/--min-cosine "
            "or check the evaluation data"
        )
    shown = ", ".join(names.get(n) or n for n in force) or "none kept"
    raise QuantizationError(
        f"Accuracy budget not met ({'; '.join(misses)}) after reverting {len(force)} of "
        f"{len(ranking)} quantized node(s) ({shown}; {len(outcome.undone)} revert(s) undone "
        "because they lowered fidelity); raise max_reverted (--max-reverted), relax the "
        "budget, or use --precision fp16"
    )


def _latency(model: onnx.ModelProto, batch: Batch | None) -> float | None:
    if batch is None:
        return None
    return median_latency_ms(model, batch, runs=20)
