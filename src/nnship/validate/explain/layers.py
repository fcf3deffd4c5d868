"""Per-layer drift localization: which layers of a quantized (or FP16) model cause its drift.

The float model and the artifact run with their intermediate activations exposed as outputs
(ONNX Runtime, graph optimizations off so no activation is fused away) on sample data; the
activations are matched (`nnship.metrics.layer_match`) and their drift is accumulated batch by
batch with the validator's `DriftAccumulator` (sums per tensor: no activation is kept).

Ranking. A layer's output SQNR in the whole artifact also carries the noise of every layer
before it, so layers are ranked by the noise they add themselves: each artifact layer also runs
alone on the float model's activations (`nnship.validate.explain.isolation`), and
`local_sqnr_db` = 10 log10(sum f^2 / sum (q_alone - f)^2) (lower is worse; per-layer SQNR
analysis as in Nagel et al., "A White Paper on Neural Network Quantization", 2021, sec. 3.7).
A layer that cannot run alone gets the first-order estimate NSR_out - max NSR_in (noise powers
of independent sources add), with a note.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import onnx
from pydantic import BaseModel, Field

from nnship.core import DataSource
from nnship.core.errors import DataError
from nnship.core.fileio import write_json_atomic
from nnship.metrics.drift import SQNR_FLOOR_DB, sqnr_db
from nnship.metrics.layer_match import TensorMatch, match_layers
from nnship.metrics.layer_match import torch_module_names as _torch_modules
from nnship.onnx.graph import is_quantized, load_onnx, onnx_input_specs
from nnship.validate.explain.run import (
    Drift,
    accumulate,
    check_correspondence,
    coverage,
    drop_shape_conflicts,
    noise_ratio,
    require_coverage,
)
from nnship.validate.report import DEFAULT_SUGGEST_MARGIN_DB, LayerDrift, Report, outlier_layers

log = logging.getLogger(__name__)

DEFAULT_MAX_SAMPLES = 32
DEFAULT_BATCH_SIZE = 8
DEFAULT_MIN_COVERAGE = 0.25
DEFAULT_MAX_SUGGESTIONS = 3


class Explanation(BaseModel):
    """What `explain` found: layers ranked worst first, and the exclusions it suggests."""

    artifact: str
    """Label of the explained artifact (a report row label, e.g. "onnxruntime/int8")."""
    float_model: str
    artifact_model: str
    samples: int
    tensors_total: int
    """Float activations produced by nodes (graph inputs not counted)."""
    tensors_matched: int
    coverage: float
    """tensors_matched / tensors_total, 0..1."""
    matched_by: dict[str, int] = Field(default_factory=dict)
    layers: list[LayerDrift] = Field(default_factory=list)
    """Worst first (lowest `local_sqnr_db`)."""
    suggested_exclusions: list[str] = Field(default_factory=list)
    """Float-model node names for `nnship quantize --exclude`."""
    notes: list[str] = Field(default_factory=list)

    def exclude_args(self) -> str:
        """`--exclude A --exclude B` for the suggested nodes ("" when none)."""
        return " ".join(f"--exclude {_shell_word(n)}" for n in self.suggested_exclusions)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(self.model_dump_json())

    def save(self, path: Path | str) -> Path:
        """Write as indented JSON, atomically."""
        return write_json_atomic(path, self.to_dict())

    def to_markdown(self, top: int = 15) -> str:
        """The `top` worst layers as a Markdown table, then the suggestion."""
        lines = [
            f"# Per-layer drift: {self.artifact}",
            "",
            f"- float model: `{self.float_model}`; artifact: `{self.artifact_model}`",
            f"- {self.samples} samples; {self.tensors_matched} of {self.tensors_total} float "
            f"activations matched ({100 * self.coverage:.0f}%: "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.matched_by.items()))
            + ")",
            "",
            "| # | layer | torch module | op | SQNR dB | input SQNR dB | added SQNR dB | cosine |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for i, layer in enumerate(self.layers[:top], 1):
            cells = [
                str(i),
                f"`{layer.layer}`",
                layer.torch_module or "-",
                layer.op_type or "-",
                _db(layer.sqnr_db),
                _db(layer.input_sqnr_db),
                _db(layer.local_sqnr_db),
                "-" if layer.cosine is None else f"{layer.cosine:.5f}",
            ]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
        if self.suggested_exclusions:
            lines.append(
                f"Suggested: keep in float with `nnship quantize ... {self.exclude_args()}`"
            )
        else:
            lines.append("No layer stands out: the drift is spread over the model.")
        lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"


def _db(value: float | None) -> str:
    return "inf" if value is None else f"{value:.1f}"


def _shell_word(text: str) -> str:
    import shlex

    return shlex.quote(text)


def _model(value: Path | str | onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    if isinstance(value, onnx.ModelProto):
        return value, value.graph.name or "in-memory model"
    return load_onnx(value), str(value)


def _open(data: DataSource | Path | str, model: onnx.ModelProto, max_samples: int) -> DataSource:
    from nnship.sources import open_data

    return open_data(data, input_specs=onnx_input_specs(model), limit=max_samples)


def _to_db(nsr: float) -> float | None:
    if math.isinf(nsr) or math.isnan(nsr):
        return SQNR_FLOOR_DB  # NaN/Inf outputs: JSON has no -inf (null means exact here)
    return sqnr_db(1.0, nsr)


def explain(
    float_onnx: Path | str | onnx.ModelProto,
    quant_onnx: Path | str | onnx.ModelProto,
    data: DataSource | Path | str,
    *,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    batch_size: int = DEFAULT_BATCH_SIZE,
    artifact: str | None = None,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
    suggest_margin_db: float = DEFAULT_SUGGEST_MARGIN_DB,
    max_suggestions: int = DEFAULT_MAX_SUGGESTIONS,
    threads: int | None = None,
) -> Explanation:
    """Rank the layers of `quant_onnx` by the drift each adds against `float_onnx`.

    - `data`: a `DataSource` or anything `nnship.sources.open_data` opens (`.npz`, `.npy`,
      folder...); checked against the float model's inputs.
    - `max_samples`: samples run (default 32); `batch_size`: samples per run (default 8; a
      model with a fixed batch axis gets exactly that size).
    - `artifact`: the label written in each `LayerDrift` (default "onnxruntime/<precision>",
      the label `nnship validate` gives the artifact's report row).
    - `min_coverage`: fraction of float activations that must be found in the artifact
      (default 0.25); below it the graphs are taken not to correspond (`OnnxModelError`).
    - Suggestions: up to `max_suggestions` (default 3) layers whose added-noise SQNR lies more
      than `suggest_margin_db` (default 10 dB) below the median layer's.
    - `threads`: ONNX Runtime intra-op threads (default: ONNX Runtime's choice).

    Raises `OnnxModelError` for unreadable or non-corresponding models and `DataError` for
    data that does not fit the float model.
    """
    if max_samples < 1 or batch_size < 1:
        raise DataError(f"max_samples and batch_size must be >= 1, got {max_samples}, {batch_size}")
    f_model, f_name = _model(float_onnx)
    q_model, q_name = _model(quant_onnx)
    check_correspondence(f_model, q_model, f_name, q_name)
    matching = match_layers(f_model, q_model)
    matches = drop_shape_conflicts(matching, f_model, q_model)
    require_coverage(*coverage(matches, matching), min_coverage, f_name, q_name)
    source = _open(data, f_model, max_samples)
    drift = accumulate(f_model, q_model, matches, source, batch_size, threads)
    matches = [m for m in matches if m.float_tensor in drift.full]
    matched, total = coverage(matches, matching)
    require_coverage(matched, total, min_coverage, f_name, q_name)
    label = artifact or f"onnxruntime/{_precision(q_model)}"
    layers = _rank(matches, drift, f_model, label)
    suggestions = _suggest(layers, {n.name for n in f_model.graph.node}, suggest_margin_db)
    counts: dict[str, int] = {}
    for m in matches:
        if m.float_tensor not in matching.graph_inputs:
            counts[m.matched_by] = counts.get(m.matched_by, 0) + 1
    return Explanation(
        artifact=label,
        float_model=f_name,
        artifact_model=q_name,
        samples=drift.samples,
        tensors_total=total,
        tensors_matched=matched,
        coverage=matched / total,
        matched_by=counts,
        layers=layers,
        suggested_exclusions=suggestions[:max_suggestions],
        notes=drift.notes + _method_note(matches, drift),
    )


def rank_layers(
    float_onnx: Path | str | onnx.ModelProto,
    quant_onnx: Path | str | onnx.ModelProto,
    data: DataSource | Path | str,
    *,
    max_samples: int = DEFAULT_MAX_SAMPLES,
) -> list[LayerDrift]:
    """Layers of `quant_onnx` worst first (see `explain`); for the quantizer's fallback."""
    return explain(float_onnx, quant_onnx, data, max_samples=max_samples).layers


def _precision(model: onnx.ModelProto) -> str:
    if is_quantized(model):
        return "int8"
    if any(i.data_type == onnx.TensorProto.FLOAT16 for i in model.graph.initializer):
        return "fp16"
    return "fp32"


def _method_note(matches: list[TensorMatch], drift: Drift) -> list[str]:
    layers = [m for m in matches if m.node is not None]
    estimated = [m.node for m in layers if m.float_tensor not in drift.isolated]
    if not estimated:
        return []
    return [
        f"{len(estimated)} of {len(layers)} layers could not be run in isolation; their added "
        f"noise is estimated as NSR(output) - NSR(worst input): {', '.join(map(str, estimated[:5]))}"
        + (" ..." if len(estimated) > 5 else "")
    ]


def _rank(
    matches: list[TensorMatch], drift: Drift, f_model: onnx.ModelProto, label: str
) -> list[LayerDrift]:
    nsr = {t: noise_ratio(acc) for t, acc in drift.full.items()}
    float_nodes = {n.name for n in f_model.graph.node if n.name}
    modules = _torch_modules(f_model)
    best: dict[str, tuple[float, LayerDrift]] = {}
    for m in matches:
        if m.node is None and not m.requantized:
            continue  # a graph input fed as is: no noise of its own
        nsr_in = max((nsr[i] for i in m.inputs if i in nsr), default=0.0)
        if m.float_tensor in drift.isolated:
            added = noise_ratio(drift.isolated[m.float_tensor])
        elif math.isinf(nsr[m.float_tensor]) and math.isinf(nsr_in):
            added = 0.0  # NaN came in from upstream; the culprit is there
        else:
            added = max(nsr[m.float_tensor] - nsr_in, 0.0)
        node = m.node if m.node in float_nodes else m.twin_node or m.float_node
        result = drift.full[m.float_tensor].result()
        layer = LayerDrift(
            artifact=label,
            layer=m.node or m.float_node or f"{m.float_tensor} (input quantization)",
            onnx_node=node,
            torch_module=modules.get(node or ""),
            sqnr_db=None if result["exact_match"] else _to_db(nsr[m.float_tensor]),
            cosine=_finite(result["cosine_mean"]),
            op_type=m.op_type if m.node is not None else "QuantizeLinear",
            tensor=m.float_tensor,
            input_sqnr_db=None if nsr_in == 0.0 else _to_db(nsr_in),
            local_sqnr_db=None if added == 0.0 else _to_db(added),
            matched_by=m.matched_by,
        )
        if layer.layer not in best or added > best[layer.layer][0]:
            best[layer.layer] = (added, layer)
    ranked = sorted(best.values(), key=lambda p: (-p[0], p[1].cosine or 0.0, p[1].layer))
    return [d for _, d in ranked]


def _finite(value: Any) -> float | None:
    if value is None or not math.isfinite(float(value)):
        return None
    return float(value)


def _suggest(layers: list[LayerDrift], float_nodes: set[str], margin_db: float) -> list[str]:
    """Excludable outliers (float-model node names), worst first."""
    worst = outlier_layers(layers, margin_db)
    out: list[str] = []
    for d in layers:
        if d.layer in worst and d.onnx_node in float_nodes and d.onnx_node not in out:
            out.append(d.onnx_node)
    return out


def attach_layer_drift(report: Report, explanation: Explanation) -> Report:
    """A copy of `report` whose `layer_drift` holds `explanation.layers` (replacing earlier
    entries of the same artifact); saving it is the caller's."""
    kept = [d for d in report.layer_drift or [] if d.artifact != explanation.artifact]
    return report.model_copy(update={"layer_drift": kept + list(explanation.layers)})
