"""Learned weight rounding (AdaRound) of a QDQ model, layer by layer, on calibration data.

Nagel et al. 2020, "Up or Down? Adaptive Rounding for Post-Training Quantization"
(arXiv:2004.10568). Rounding every weight to the nearest integer is not what minimises the
error of a layer's *output*. For a layer with float weights `W`, per-channel scale `s` and
input `x~` (the quantized model's own input to that layer, so the errors of the layers before
it are seen), AdaRound learns, per weight, whether to round down or up:

    W~ = s * clip(floor(W / s) + h(V), qmin, qmax),   h(V) = clip(sigmoid(V) (zeta - gamma) + gamma, 0, 1)

(the rectified sigmoid, eq. 23, zeta = 1.1, gamma = -0.1) by minimising

    || f(W x + b) - f(W~ x~ + b) ||^2  +  lambda * sum(1 - |2 h(V) - 1| ^ beta)        (eq. 25)

where `f` is the activation that follows the layer (Relu / Clip) and the regulariser, with
`beta` annealed from 20 to 2 after a warm start, drives every `h(V)` to 0 or 1. The final
rounding is `floor(W / s) + [h(V) >= 0.5]`. Defaults follow AIMET's AdaRound
(`reg_param` 0.01, `beta_range` (20, 2), `warm_start` 0.2, Adam at lr 1e-3, cosine decay of
`beta`); the number of iterations is far lower than AIMET's 10,000 (see docs/quantization.md
for the measured trade-off).

What is nnship's own here: the layer problem is solved on *rows* sampled from the output
positions (each row an input patch and the float output at that position), so a 3x3 or 1x1
convolution over a 112x112 map costs a small matrix product per step, not a full
convolution; and the rounding changes only which integer the weight DequantizeLinear's int8
initializer holds. Scales, zero points, Q/DQ placement and the graph are untouched, so the
model runs exactly as fast as with nearest rounding. Layers are processed in graph order and
each layer's inputs are recomputed from the QDQ model with the earlier layers already rounded
(sequential AdaRound, as in the paper and AIMET). A layer whose learned rounding does not
lower its reconstruction error against nearest rounding on the rows keeps nearest rounding.

Why hand-written: of ONNX Runtime, NNCF, OpenVINO and AIMET only AIMET ships AdaRound, and it
runs on its own simulation model, not on a QDQ ONNX.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from nnship.core import Batch, DataSource
from nnship.core.progress import track

log = logging.getLogger(__name__)

ZETA, GAMMA = 1.1, -0.1  # stretch of the rectified sigmoid (AdaRound eq. 23)
_WEIGHTED = frozenset({"Conv", "Gemm", "MatMul"})


@dataclass
class RoundedLayer:
    """One layer: node name, op type, weights, rows it was fitted on, reconstruction MSE (per
    output element) with nearest and with learned rounding, share of weights that rounded the
    other way than nearest, and whether the learned rounding was kept."""

    name: str
    op_type: str
    weights: int
    rows: int
    mse_nearest: float
    mse_adaround: float
    flipped: float
    kept: bool
    seconds: float


@dataclass
class AdaRoundReport:
    layers: list[RoundedLayer] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        kept = [layer for layer in self.layers if layer.kept]
        return {
            "transform": "adaround",
            "layers_rounded": len(kept),
            "layers_considered": len(self.layers),
            "seconds": round(self.seconds, 2),
            "cpu_seconds": round(self.cpu_seconds, 2),
            "settings": dict(self.settings),
            "layers": [asdict(layer) for layer in self.layers],
            "skipped": [{"node": n, "reason": r} for n, r in self.skipped],
        }


@dataclass
class _Layer:
    """A weighted node of the QDQ model whose weight comes from an int8 DequantizeLinear."""

    name: str
    op_type: str
    q_input: str  # activation input tensor of the node in the QDQ model
    f_target: str  # the float model's tensor the layer (plus activation) must reproduce
    act: tuple[float, float] | None  # bounds of the Relu/Clip that follows, if any
    weight_init: str  # int8 initializer the DequantizeLinear reads
    w_float: np.ndarray  # float weights in the layer's canonical [Cout, Cin/g * k...] form
    scale: np.ndarray  # [Cout]
    zero: np.ndarray  # [Cout]
    qrange: tuple[int, int]
    bias: np.ndarray | None
    group: int = 1
    conv: dict[str, Any] | None = None  # kernel, strides, pads, dilations for Conv
    transpose_back: bool = False  # MatMul weights are [K, N]: canonical form is W.T


# -- graph analysis --------------------------------------------------------------------------
def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _activation_after(
    model: onnx.ModelProto, tensor: str, consts: dict[str, np.ndarray]
) -> tuple[str, tuple[float, float] | None]:
    """The float model's tensor after the Relu / Clip that alone consumes `tensor`."""
    consumers = [n for n in model.graph.node if tensor in n.input]
    if len(consumers) != 1 or tensor in {o.name for o in model.graph.output}:
        return tensor, None
    node = consumers[0]
    if node.op_type == "Relu":
        return node.output[0], (0.0, math.inf)
    if node.op_type == "Clip":
        attrs = _attrs(node)
        lo, hi = float(attrs.get("min", -math.inf)), float(attrs.get("max", math.inf))
        bounds = list(node.input[1:]) + ["", ""]
        for k, name in enumerate(bounds[:2]):
            if name:
                if name not in consts:
                    return tensor, None
                value = float(consts[name])
                lo, hi = (value, hi) if k == 0 else (lo, value)
        return node.output[0], (lo, hi)
    return tensor, None


def _constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    consts = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute:
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return consts


def find_layers(
    float_model: onnx.ModelProto, qmodel: onnx.ModelProto, skipped: list[tuple[str, str]]
) -> list[_Layer]:
    """Weighted nodes of `qmodel` (graph order of `float_model`) whose weights AdaRound can
    re-round; every other weighted node is added to `skipped` with the reason."""
    fconsts, qconsts = _constants(float_model), _constants(qmodel)
    producer = {o: n for n in qmodel.graph.node for o in n.output}
    qnodes = {n.name: n for n in qmodel.graph.node}
    layers, seen_inits = [], set()
    for fnode in float_model.graph.node:
        if fnode.op_type not in _WEIGHTED:
            continue
        qnode = qnodes.get(fnode.name)
        why = None
        dq = producer.get(qnode.input[1]) if qnode is not None and len(qnode.input) > 1 else None
        if qnode is None or dq is None or dq.op_type != "DequantizeLinear":
            why = "weights not quantized"
        elif fnode.input[1] not in fconsts:
            why = "float weights are not a constant"
        elif dq.input[0] not in qconsts or dq.input[0] in seen_inits:
            why = "int8 weights shared with another node"
        layer = None if why else _layer(fnode, qnode, dq, float_model, fconsts, qconsts)
        if isinstance(layer, str) or why:
            skipped.append((fnode.name, why or str(layer)))
            continue
        assert layer is not None
        seen_inits.add(layer.weight_init)
        layers.append(layer)
    return layers


def _layer(  # noqa: PLR0911
    fnode: onnx.NodeProto,
    qnode: onnx.NodeProto,
    dq: onnx.NodeProto,
    float_model: onnx.ModelProto,
    fconsts: dict[str, np.ndarray],
    qconsts: dict[str, np.ndarray],
) -> _Layer | str:
    """The layer's problem, or why it cannot be posed."""
    w = fconsts[fnode.input[1]].astype(np.float32)
    qweights = qconsts[dq.input[0]]
    if qweights.dtype not in (np.int8, np.uint8):
        return f"weights stored as {qweights.dtype}, not int8/uint8"
    scale = np.asarray(qconsts[dq.input[1]], np.float32).reshape(-1)
    zero = (
        np.asarray(qconsts[dq.input[2]], np.float32).reshape(-1)
        if len(dq.input) > 2 and dq.input[2]
        else np.zeros_like(scale)
    )
    axis = int(_attrs(dq).get("axis", 1))
    attrs = _attrs(fnode)
    transpose_back = False
    if fnode.op_type == "Conv":
        if w.ndim != 4:
            return f"{w.ndim - 2}-D convolution (AdaRound here handles 2-D)"
        if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
            return "Conv with auto_pad SAME (explicit pads only)"
        wax = 0
    elif fnode.op_type == "Gemm":
        if attrs.get("transA", 0) or float(attrs.get("alpha", 1.0)) != 1.0:
            return "Gemm with transA or alpha != 1"
        wax = 0 if attrs.get("transB", 0) else 1
        if wax == 1:
            w, transpose_back = w.T, True
    else:  # MatMul: B is [K, N]
        if w.ndim != 2:
            return "MatMul with a batched constant B"
        w, transpose_back, wax = w.T, True, 1
    if qweights.shape != fconsts[fnode.input[1]].shape:
        return "int8 and float weights differ in shape"
    if scale.size not in (1, w.shape[0]) or (scale.size > 1 and axis % qweights.ndim != wax):
        return "weight scale is not per output channel or per tensor"
    cout = w.shape[0]
    scale = np.broadcast_to(scale, (cout,)).copy()
    zero = np.broadcast_to(zero, (cout,)).copy()
    act_in = _activation_after(float_model, fnode.output[0], fconsts)
    bias = None
    if fnode.op_type in ("Conv", "Gemm") and len(fnode.input) > 2 and fnode.input[2]:
        if fnode.input[2] not in fconsts:
            return "non-constant bias"
        bias = np.broadcast_to(fconsts[fnode.input[2]].astype(np.float32).reshape(-1), (cout,))
        bias = bias.copy()
    if fnode.op_type == "Gemm" and float(attrs.get("beta", 1.0)) != 1.0 and bias is not None:
        bias = bias * float(attrs["beta"])
    conv = None
    group = 1
    if fnode.op_type == "Conv":
        group = int(attrs.get("group", 1))
        kh, kw = w.shape[2], w.shape[3]
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        conv = {
            "kernel": (kh, kw),
            "strides": tuple(attrs.get("strides", [1, 1])),
            "dilations": tuple(attrs.get("dilations", [1, 1])),
            "pads": (pads[0], pads[1], pads[2], pads[3]),
        }
    return _Layer(
        name=fnode.name,
        op_type=fnode.op_type,
        q_input=qnode.input[0],
        f_target=act_in[0],
        act=act_in[1],
        weight_init=dq.input[0],
        w_float=w.reshape(cout, -1) if conv is None else w,
        scale=scale,
        zero=zero,
        qrange=(-128, 127) if qweights.dtype == np.int8 else (0, 255),
        bias=bias,
        group=group,
        conv=conv,
        transpose_back=transpose_back,
    )


# -- running parts of a model ----------------------------------------------------------------
def _probe(model: onnx.ModelProto, tensors: list[str]):  # noqa: ANN202
    """An ONNX Runtime session over the part of `model` that computes `tensors` (its only
    outputs)."""
    from nnship.backends.onnxruntime.outputs import make_session
    from nnship.onnx.graph import add_outputs

    probe = add_outputs(model, tensors)
    keep = [o for o in probe.graph.output if o.name in set(tensors)]
    del probe.graph.output[:]
    probe.graph.output.extend(keep)
    needed, nodes = set(tensors), []
    for node in reversed(probe.graph.node):
        if any(o in needed for o in node.output):
            nodes.append(node)
            needed.update(i for i in node.input if i)
    kept = list(reversed(nodes))
    del probe.graph.node[:]
    probe.graph.node.extend(kept)
    return make_session(probe)


def _batches(data: DataSource, samples: int, batch_size: int) -> Iterator[Batch]:
    seen = 0
    for item in data.iter_batches(batch_size):
        rows = len(next(iter(item.inputs.values())))
        take = min(rows, samples - seen)
        if take <= 0:
            break
        yield {k: v[:take] for k, v in item.inputs.items()}
        seen += take


# -- rows: (input patch, float output) pairs -------------------------------------------------
def _positions(rng: np.random.Generator, shape: tuple[int, ...], per_sample: int) -> np.ndarray:
    """Sampled (sample, y, x) positions of an output map `[N, C, H, W]` (all when fewer)."""
    n, h, w = shape[0], shape[2], shape[3]
    picks = []
    for b in range(n):
        flat = np.arange(h * w) if h * w <= per_sample else rng.choice(h * w, per_sample, False)
        flat.sort()
        picks.append(np.stack([np.full_like(flat, b), flat // w, flat % w], 1))
    return np.concatenate(picks)


def _patches(x: np.ndarray, pos: np.ndarray, layer: _Layer) -> np.ndarray:
    """Input patches `[rows, group, Cin/g * kh * kw]` of a Conv at output positions `pos`."""
    assert layer.conv is not None
    (kh, kw), (sh, sw) = layer.conv["kernel"], layer.conv["strides"]
    (dh, dw), (pt, pl, pb, pr) = layer.conv["dilations"], layer.conv["pads"]
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    iy = pos[:, 1:2] * sh + np.arange(kh)[None] * dh  # [rows, kh]
    ix = pos[:, 2:3] * sw + np.arange(kw)[None] * dw  # [rows, kw]
    patch = xp[pos[:, 0, None, None], :, iy[:, :, None], ix[:, None, :]]  # [rows, kh, kw, C]
    patch = patch.transpose(0, 3, 1, 2)  # [rows, C, kh, kw]
    rows, channels = patch.shape[:2]
    g = layer.group
    return np.ascontiguousarray(patch.reshape(rows, g, channels // g * kh * kw))


def _flatten_rows(t: np.ndarray) -> np.ndarray:
    """Rows of a Gemm/MatMul activation: every axis but the last is a row."""
    return t.reshape(-1, t.shape[-1])


# -- the optimisation (torch autograd) ---------------------------------------------------------
def _h(v):  # noqa: ANN001, ANN202
    import torch

    return torch.clamp(torch.sigmoid(v) * (ZETA - GAMMA) + GAMMA, 0.0, 1.0)


def _beta(step: int, iterations: int, warm: int, start: float, end: float) -> float:
    """Cosine decay of the regulariser's exponent from `start` to `end` after `warm` steps
    (AIMET AdaroundLoss.compute_beta)."""
    rel = (step - warm) / max(iterations - warm, 1)
    return end + 0.5 * (start - end) * (1.0 + math.cos(rel * math.pi))


def _fit(
    layer: _Layer,
    x: np.ndarray,
    y: np.ndarray,
    settings: Any,
    seed: int,
) -> tuple[np.ndarray, float, float]:
    """Learned integer weights, and the reconstruction MSE with nearest / learned rounding."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    g = layer.group
    cout = layer.w_float.shape[0]
    w = torch.from_numpy(layer.w_float.reshape(g, cout // g, -1).astype(np.float32))
    s = torch.from_numpy(layer.scale.reshape(g, cout // g, 1))
    z = torch.from_numpy(layer.zero.reshape(g, cout // g, 1))
    lo, hi = layer.qrange
    xt = torch.from_numpy(x.reshape(len(x), g, -1))
    yt = torch.from_numpy(y.astype(np.float32))
    bias = None if layer.bias is None else torch.from_numpy(layer.bias)
    w_floor = torch.floor(w / s)
    rest = (w / s - w_floor).clamp(1e-4, 1 - 1e-4)
    v = (-torch.log((ZETA - GAMMA) / (rest - GAMMA) - 1.0)).requires_grad_(True)

    def forward(q_int, rows):  # noqa: ANN001, ANN202
        # q_int is the rounded w / s; the stored integer is q_int + zero point
        wq = s * (torch.clamp(q_int + z, lo, hi) - z)
        out = torch.einsum("ngk,gok->ngo", rows, wq).reshape(len(rows), cout)
        if bias is not None:
            out = out + bias
        if layer.act is not None:
            out = torch.clamp(out, layer.act[0], layer.act[1])
        return out

    def mse(q_int) -> float:
        with torch.no_grad():
            err = 0.0
            for k in range(0, len(xt), 4096):
                err += float(((forward(q_int, xt[k : k + 4096]) - yt[k : k + 4096]) ** 2).sum())
            return err / yt.numel()

    nearest = torch.round(w / s)
    mse_nearest = mse(nearest)
    opt = torch.optim.Adam([v], lr=settings.lr)
    iterations, rows = settings.iterations, min(settings.batch_rows, len(xt))
    warm = int(settings.warm_start * iterations)
    for step in range(iterations):
        idx = torch.randint(0, len(xt), (rows,), generator=gen)
        h = _h(v)
        recon = ((forward(w_floor + h, xt[idx]) - yt[idx]) ** 2).sum(1).mean()
        loss = recon
        if step >= warm:
            beta = _beta(step, iterations, warm, settings.beta_start, settings.beta_end)
            loss = loss + settings.reg_param * (1 - (2 * h - 1).abs().pow(beta)).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        learned = w_floor + (v >= 0).to(w.dtype)  # h(V) >= 0.5  <=>  V >= 0
    mse_learned = mse(learned)
    q = torch.clamp(learned + z, lo, hi).reshape(layer.w_float.shape).numpy()
    return q, mse_nearest, mse_learned


# -- the pass ----------------------------------------------------------------------------------
def adaround(
    float_model: onnx.ModelProto,
    qmodel: onnx.ModelProto,
    data: DataSource,
    settings: Any,
    *,
    seed: int = 0,
) -> tuple[onnx.ModelProto, dict[str, np.ndarray], AdaRoundReport]:
    """Re-round the int8 weights of `qmodel` (the QDQ model built from `float_model`) with
    AdaRound on at most `settings.samples` samples of `data`. Returns a new model (the input
    is not modified), the learned integer weights by int8 initializer name (for
    `apply_rounding` on a rebuilt model), and a report. `settings` is a
    `nnship.quantize.config.AdaRoundSettings`."""
    t0, c0 = time.perf_counter(), time.process_time()
    report = AdaRoundReport(settings=settings.model_dump())
    out = onnx.ModelProto()
    out.CopyFrom(qmodel)
    layers = find_layers(float_model, out, report.skipped)
    if not layers:
        return out, {}, report
    import torch

    threads = torch.get_num_threads()
    # One thread: each step is a small matrix product, and on a busy 2-core machine two
    # threads made a step ~20x slower (thread hand-off, measured); it also keeps the sums
    # the same on every machine.
    torch.set_num_threads(1)
    try:
        learned = _round_layers(float_model, out, layers, data, settings, seed, report)
    finally:
        torch.set_num_threads(threads)
    report.seconds = time.perf_counter() - t0
    report.cpu_seconds = time.process_time() - c0
    log.info(
        "AdaRound: %d of %d layers re-rounded in %.1f s",
        sum(layer.kept for layer in report.layers),
        len(report.layers),
        report.seconds,
    )
    return out, learned, report


def _round_layers(
    float_model: onnx.ModelProto,
    out: onnx.ModelProto,
    layers: list[_Layer],
    data: DataSource,
    settings: Any,
    seed: int,
    report: AdaRoundReport,
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    per_sample = max(1, settings.rows // settings.samples)
    targets, positions = _float_targets(float_model, layers, data, settings, rng, per_sample)
    inits = {i.name: i for i in out.graph.initializer}
    learned: dict[str, np.ndarray] = {}
    for index, layer in enumerate(track(layers, "AdaRound")):
        t1 = time.perf_counter()
        x = _quant_inputs(out, layer, data, settings, positions.get(layer.name))
        y = targets[layer.name]
        q, mse_near, mse_ada = _fit(layer, x, y, settings, seed + index)
        kept = mse_ada < mse_near
        shape = numpy_helper.to_array(inits[layer.weight_init]).shape
        nearest = np.clip(
            np.round(layer.w_float.reshape(layer.w_float.shape[0], -1) / layer.scale[:, None])
            + layer.zero[:, None],
            *layer.qrange,
        )
        q_flat = q.reshape(nearest.shape)
        flipped = float((q_flat != nearest).mean())
        if kept:
            dtype = np.int8 if layer.qrange[0] < 0 else np.uint8
            value = q_flat.reshape(layer.w_float.shape)
            if layer.transpose_back:
                value = value.reshape(layer.w_float.shape).T
            value = value.reshape(shape).astype(dtype)
            inits[layer.weight_init].CopyFrom(numpy_helper.from_array(value, layer.weight_init))
            learned[layer.weight_init] = value
        report.layers.append(
            RoundedLayer(
                layer.name,
                layer.op_type,
                int(layer.w_float.size),
                len(y),
                mse_near,
                mse_ada,
                flipped,
                kept,
                time.perf_counter() - t1,
            )
        )
        log.debug("AdaRound %s: %s", layer.name, report.layers[-1])
    return learned


def _float_targets(
    float_model: onnx.ModelProto,
    layers: list[_Layer],
    data: DataSource,
    settings: Any,
    rng: np.random.Generator,
    per_sample: int,
) -> tuple[dict[str, np.ndarray], dict[str, list[np.ndarray]]]:
    """One float pass: each layer's target rows, and (for Conv) the positions they sit at,
    one array per batch."""
    names = sorted({layer.f_target for layer in layers})
    session = _probe(float_model, names)
    rows: dict[str, list[np.ndarray]] = {layer.name: [] for layer in layers}
    positions: dict[str, list[np.ndarray]] = {layer.name: [] for layer in layers}
    for batch in _batches(data, settings.samples, settings.batch_size):
        values = dict(zip(names, session.run(names, batch)))
        for layer in layers:
            t = values[layer.f_target]
            if layer.conv is not None:
                pos = _positions(rng, t.shape, per_sample)
                positions[layer.name].append(pos)
                rows[layer.name].append(t[pos[:, 0], :, pos[:, 1], pos[:, 2]])
            else:
                rows[layer.name].append(_flatten_rows(t))
    return {k: np.concatenate(v) for k, v in rows.items()}, positions


def _quant_inputs(
    qmodel: onnx.ModelProto,
    layer: _Layer,
    data: DataSource,
    settings: Any,
    positions: list[np.ndarray] | None,
) -> np.ndarray:
    """The layer's input rows from the QDQ model as it stands (earlier layers re-rounded)."""
    session = _probe(qmodel, [layer.q_input])
    chunks = []
    for k, batch in enumerate(_batches(data, settings.samples, settings.batch_size)):
        (x,) = session.run([layer.q_input], batch)
        if layer.conv is not None:
            assert positions is not None
            chunks.append(_patches(x, positions[k], layer))
        else:
            chunks.append(_flatten_rows(x)[:, None, :])
    return np.concatenate(chunks).astype(np.float32)


def apply_rounding(qmodel: onnx.ModelProto, learned: dict[str, np.ndarray]) -> onnx.ModelProto:
    """Write learned int8 weights into a (re)built QDQ model, in place, where an initializer of
    the same name and shape exists (a node reverted to float has none)."""
    for init in qmodel.graph.initializer:
        value = learned.get(init.name)
        if value is not None and tuple(init.dims) == value.shape:
            init.CopyFrom(numpy_helper.from_array(value, init.name))
    return qmodel
