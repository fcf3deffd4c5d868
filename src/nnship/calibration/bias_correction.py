"""Empirical bias correction of a quantized (QDQ) ONNX model against its float model.

Nagel et al. 2019, "Data-Free Quantization Through Weight Equalization and Bias Correction"
(arXiv:1906.04721), section 4.2: quantizing a layer shifts the expected value of its output,
`E[y~] = E[y] + eps E[x]`, and this shift survives into the next layers. Subtracting it from
the bias restores the expected output. The empirical variant (AIMET's empirical bias
correction, NNCF's BiasCorrection) measures the shift on calibration data instead of deriving
it from batch-norm statistics. For every quantized Conv / ConvTranspose / Gemm:

    shift_c = mean(y_float[:, c, ...]) - mean(y_quant[:, c, ...])

over samples and spatial positions of the layer's pre-activation output (in the QDQ model the
float output of the node, before the QuantizeLinear that follows it), and `shift_c` is added
to the bias of output channel `c`.

Layers are corrected in dependency order, because correcting a layer changes the inputs of
the layers after it. Layers with no path between them form one level and are measured in the
same pass. Each pass runs only the part of the QDQ model that the level needs. Every other
quantized layer keeps its fused integer kernel in ONNX Runtime. ONNX Runtime reduces each
measured tensor to per-channel sums inside the graph, so activations are never stored.
The float model runs once. Cost: one float pass plus one partial QDQ pass per level.

Why hand-written: onnxruntime.quantization has no bias correction, and NNCF's only runs inside
its own quantization (its own graph and Q/DQ placement), so it cannot correct a QDQ model
that nnship wrote.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper

from nnship.calibration.bias_storage import GraphIndex, LayerBias, apply_shift, prepare_biases
from nnship.calibration.channel_means import BatchStream, channel_means
from nnship.core import DataSource
from nnship.core.errors import CalibrationError
from nnship.core.progress import track
from nnship.onnx.graph import is_quantized, load_onnx, onnx_input_specs

log = logging.getLogger(__name__)

_LAYER_OPS = frozenset({"Conv", "ConvTranspose", "Gemm"})
# Activations onnxruntime.quantization folds into the producing node's QuantizeLinear: the
# fused Conv then writes the activation's output name, but its value is pre-activation.
_FOLDED_ACTIVATIONS = frozenset({"Relu", "Clip", "LeakyRelu"})


@dataclass
class CorrectedLayer:
    """One corrected layer: node name, op type, output channels, dependency level (0 = no
    corrected layer upstream), how the bias is stored (`int32` behind a DequantizeLinear,
    `float`, or `created int32` / `created float` when the layer had none), and the mean and
    max |correction| added to the bias, in the layer's output units."""

    name: str
    op_type: str
    channels: int
    level: int
    bias: str
    mean_abs_correction: float
    max_abs_correction: float


@dataclass
class BiasCorrectionReport:
    """What `correct_bias` did: corrected layers in topological order, layers it skipped
    (name, reason), the number of ONNX Runtime passes over the data (float + QDQ), and the
    samples used per pass."""

    layers: list[CorrectedLayer] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    passes: int = 0
    samples: int = 0

    @property
    def applied(self) -> bool:
        return bool(self.layers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "transform": "bias_correction",
            "applied": self.applied,
            "passes": self.passes,
            "samples": self.samples,
            "layers": [asdict(layer) for layer in self.layers],
            "skipped": [{"node": n, "reason": r} for n, r in self.skipped],
        }


def _attr(node: onnx.NodeProto, name: str, default: Any) -> Any:
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _channels(node: onnx.NodeProto, weight_dims: list[int]) -> int:
    if node.op_type == "Conv":
        return weight_dims[0]
    if node.op_type == "ConvTranspose":
        return weight_dims[1] * int(_attr(node, "group", 1))
    return weight_dims[0] if int(_attr(node, "transB", 0)) else weight_dims[1]  # Gemm


def _float_tensor(node: onnx.NodeProto, fgraph: GraphIndex, fnodes: dict[str, onnx.NodeProto]):
    """The float model's tensor holding `node`'s pre-activation output, or None."""
    out = node.output[0]
    producer = fgraph.producer.get(out)
    # Same tensor name, not an activation the quantizer folded away: the same value (this also
    # covers an Add/BatchNormalization that ONNX Runtime fused into the Conv before quantizing).
    if producer is not None and producer.op_type not in _FOLDED_ACTIVATIONS:
        return out
    same = fnodes.get(node.name)
    if same is not None and same.op_type == node.op_type:
        return same.output[0]
    while producer is not None and producer.op_type in _FOLDED_ACTIVATIONS:
        producer = fgraph.producer.get(producer.input[0])
    if producer is not None and producer.op_type == node.op_type:
        return producer.output[0]
    return None


def _find_layers(
    quant: onnx.ModelProto, float_model: onnx.ModelProto, report: BiasCorrectionReport
) -> list[tuple[onnx.NodeProto, LayerBias]]:
    qgraph, fgraph = GraphIndex(quant.graph), GraphIndex(float_model.graph)
    fnodes = {n.name: n for n in float_model.graph.node if n.name}
    found = []
    for node in quant.graph.node:
        if node.op_type not in _LAYER_OPS:
            continue
        name = node.name or node.output[0]
        wdq = qgraph.dequantize(node.input[1]) if len(node.input) > 1 else None
        if wdq is None or wdq.input[0] not in qgraph.inits:
            report.skipped.append((name, "weight is not quantized (layer left in float)"))
            continue
        ftensor = _float_tensor(node, fgraph, fnodes)
        if ftensor is None:
            report.skipped.append((name, "no matching node or tensor in the float model"))
            continue
        dims = list(qgraph.inits[wdq.input[0]].dims)
        rank = 2 if node.op_type == "Gemm" else len(dims)
        layer = LayerBias(name, node.op_type, node.output[0], ftensor, rank, _channels(node, dims))
        if node.op_type == "Gemm":
            layer.beta = float(_attr(node, "beta", 1.0))
            if layer.beta == 0.0:
                report.skipped.append((name, "Gemm with beta = 0 ignores its bias"))
                continue
        found.append((node, layer))
    return found


def _assign_levels(graph: onnx.GraphProto, layers: dict[str, LayerBias]) -> None:
    """Level of a layer = 1 + the highest level among corrected layers upstream of it (0 when
    there is none): layers of one level have no path between them. The graph is in
    topological order, as ONNX requires."""
    depth: dict[str, int] = {}
    for node in graph.node:
        upstream = max((depth.get(i, -1) for i in node.input if i), default=-1)
        layer = layers.get(node.output[0]) if node.output else None
        if layer is not None:
            layer.level = upstream + 1
            upstream = layer.level
        for out in node.output:
            depth[out] = upstream


def correct_bias(
    float_model: onnx.ModelProto | Path | str,
    quant_model: onnx.ModelProto | Path | str,
    data: DataSource,
    *,
    max_samples: int | None = 128,
    batch_size: int = 16,
) -> tuple[onnx.ModelProto, BiasCorrectionReport]:
    """Add to the bias of every quantized Conv / ConvTranspose / Gemm of `quant_model` (a QDQ
    ONNX model) the per-output-channel mean of (float output - quantized output) measured on
    `data`, layer after layer in dependency order. Returns a new model and a report; the
    inputs are not modified.

    `float_model` is the model `quant_model` was quantized from (or a float-equivalent form of
    it). Uses at most `max_samples` samples (defaults to 128; None = all) in batches of
    `batch_size` (defaults to 16; a fixed batch dimension in the model wins). int32 biases
    behind a DequantizeLinear are updated in their integer form (rounded, same scale), so the
    Q/DQ pattern ONNX Runtime fuses into integer kernels is kept; a layer without a bias gets
    one. Deterministic for the same inputs. Raises `CalibrationError` for a float model that
    is quantized, a quantized model that is not, models with different inputs, bad settings
    or empty data, and `DataError` when the data does not fit the models.
    """
    fmodel = load_onnx(float_model) if isinstance(float_model, str | Path) else float_model
    qsource = load_onnx(quant_model) if isinstance(quant_model, str | Path) else quant_model
    _check_models(fmodel, qsource, max_samples, batch_size)
    work = onnx.ModelProto()
    work.CopyFrom(qsource)
    report = BiasCorrectionReport()
    layers = prepare_biases(work, _find_layers(work, fmodel, report), report.skipped)
    _assign_levels(work.graph, {x.quant_tensor: x for x in layers})
    if not layers:
        log.info("bias correction: no quantized Conv/Gemm layer to correct")
        return work, report
    batches = BatchStream(fmodel, data, max_samples, batch_size)
    float_means = channel_means(fmodel, {x.float_tensor: x.rank for x in layers}, batches)
    report.passes, report.samples = 1, batches.samples
    levels = sorted({x.level for x in layers})
    inits = {i.name: i for i in work.graph.initializer}
    corrected: dict[str, CorrectedLayer] = {}
    for level in track(levels, "bias correction"):
        group = [x for x in layers if x.level == level]
        quant_means = channel_means(work, {x.quant_tensor: x.rank for x in group}, batches)
        report.passes += 1
        for layer in group:
            fmean, qmean = float_means[layer.float_tensor], quant_means[layer.quant_tensor]
            if fmean.shape != (layer.channels,) or qmean.shape != (layer.channels,):
                why = (
                    f"channel counts differ: float {fmean.shape}, quantized {qmean.shape}, "
                    f"weight {layer.channels}"
                )
                report.skipped.append((layer.name, why))
                continue
            applied = apply_shift(inits[layer.init], layer, fmean - qmean)
            corrected[layer.name] = CorrectedLayer(
                layer.name,
                layer.op_type,
                layer.channels,
                layer.level,
                layer.kind,
                float(np.abs(applied).mean()),
                float(np.abs(applied).max()),
            )
    report.layers = [corrected[x.name] for x in layers if x.name in corrected]
    try:
        onnx.checker.check_model(work, full_check=True)
    except onnx.checker.ValidationError as exc:  # a bug in this pass, not the user's input
        raise AssertionError(f"bias correction produced an invalid model: {exc}") from exc
    log.info(
        "bias correction: %d layer(s) in %d pass(es) over %d sample(s)",
        len(report.layers),
        report.passes,
        report.samples,
    )
    return work, report


def _check_models(
    fmodel: onnx.ModelProto, qmodel: onnx.ModelProto, max_samples: int | None, batch_size: int
) -> None:
    if is_quantized(fmodel):
        raise CalibrationError(
            "correct_bias: float_model holds QuantizeLinear/DequantizeLinear or integer ops; "
            "pass the float model the quantized one was made from"
        )
    if not is_quantized(qmodel):
        raise CalibrationError(
            "correct_bias: quant_model holds no QuantizeLinear/DequantizeLinear; pass the "
            "QDQ model written by nnship's quantizer"
        )
    fnames = [s.name for s in onnx_input_specs(fmodel)]
    qnames = [s.name for s in onnx_input_specs(qmodel)]
    if sorted(fnames) != sorted(qnames):
        raise CalibrationError(
            f"correct_bias: the models' inputs differ (float {fnames}, quantized {qnames}); "
            "was quant_model quantized from float_model?"
        )
    if max_samples is not None and max_samples < 1:
        raise CalibrationError(f"correct_bias: max_samples must be >= 1 (got {max_samples})")
    if batch_size < 1:
        raise CalibrationError(f"correct_bias: batch_size must be >= 1 (got {batch_size})")
