"""The running half of `nnship explain`: check that two graphs correspond, then stream sample
batches through the float model, the artifact and the per-layer probe, accumulating drift sums
per tensor (no activation is kept)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx

from nnship.core import DataSource, Runner
from nnship.core.errors import DataError, OnnxModelError
from nnship.core.progress import track
from nnship.metrics.drift import DriftAccumulator
from nnship.metrics.layer_match import LayerMatching, TensorMatch, value_types
from nnship.onnx.graph import onnx_input_specs, onnx_output_names
from nnship.validate.explain.isolation import Probe, build_probe

log = logging.getLogger(__name__)


def check_correspondence(f: onnx.ModelProto, q: onnx.ModelProto, fn: str, qn: str) -> None:
    f_specs = {s.name: s for s in onnx_input_specs(f)}
    q_specs = {s.name: s for s in onnx_input_specs(q)}
    if set(f_specs) != set(q_specs):
        raise OnnxModelError(
            f"'{qn}' does not correspond to '{fn}': inputs {sorted(q_specs)} vs "
            f"{sorted(f_specs)}. Explain a model against the float model it was made from."
        )
    for name, spec in f_specs.items():
        other = q_specs[name]
        fixed = [
            (a, b)
            for a, b in zip(spec.shape, other.shape)
            if isinstance(a, int) and isinstance(b, int) and a > 0 and b > 0
        ]
        if len(spec.shape) != len(other.shape) or any(a != b for a, b in fixed):
            raise OnnxModelError(
                f"'{qn}' does not correspond to '{fn}': input '{name}' has shape "
                f"{other.shape_str()} vs {spec.shape_str()}"
            )
    f_out, q_out = onnx_output_names(f), onnx_output_names(q)
    if len(f_out) != len(q_out):
        raise OnnxModelError(
            f"'{qn}' does not correspond to '{fn}': outputs {q_out} vs {f_out} (counts differ)"
        )


def _static_shapes(model: onnx.ModelProto) -> dict[str, tuple[int | str, ...]]:
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # shapes only refine the matching; without them runtime checks remain
        return {}
    shapes: dict[str, tuple[int | str, ...]] = {}
    graph = inferred.graph
    for v in list(graph.value_info) + list(graph.input) + list(graph.output):
        if v.type.tensor_type.HasField("shape"):
            dims = v.type.tensor_type.shape.dim
            shapes[v.name] = tuple(d.dim_value if d.HasField("dim_value") else "?" for d in dims)
    return shapes


def _shapes_agree(a: tuple[int | str, ...] | None, b: tuple[int | str, ...] | None) -> bool:
    if a is None or b is None:
        return True
    if len(a) != len(b):
        return False
    return all(x == y for x, y in zip(a, b) if isinstance(x, int) and isinstance(y, int))


def drop_shape_conflicts(
    matching: LayerMatching, f: onnx.ModelProto, q: onnx.ModelProto
) -> list[TensorMatch]:
    fs, qs = _static_shapes(f), _static_shapes(q)
    return [
        m for m in matching.matches if _shapes_agree(fs.get(m.float_tensor), qs.get(m.other_tensor))
    ]


def coverage(matches: list[TensorMatch], matching: LayerMatching) -> tuple[int, int]:
    total = [t for t in matching.float_tensors if t not in matching.graph_inputs]
    found = {m.float_tensor for m in matches}
    return sum(t in found for t in total), len(total)


def require_coverage(matched: int, total: int, minimum: float, fn: str, qn: str) -> None:
    if total == 0 or matched / total < minimum:
        raise OnnxModelError(
            f"The graphs of '{fn}' and '{qn}' do not correspond: only {matched} of {total} float "
            f"activations were found in the artifact (need {100 * minimum:.0f}%; "
            "min_coverage / --min-coverage). Explain a model against the float model it was "
            "made from."
        )


def _batch_size(model: onnx.ModelProto, wanted: int) -> int:
    for spec in onnx_input_specs(model):
        first = spec.shape[0] if spec.shape else None
        if isinstance(first, int) and first > 0:
            return first  # a fixed batch axis: feed exactly that many samples
    return wanted


def noise_ratio(acc: DriftAccumulator) -> float:
    """Noise-to-signal power ratio sum (q - f)^2 / sum f^2; inf for NaN/Inf outputs."""
    if acc.nonfinite:
        return math.inf
    if acc.sum_err_sq == 0.0:
        return 0.0
    if acc.sum_ref_sq == 0.0:
        return math.inf
    return acc.sum_err_sq / acc.sum_ref_sq


@dataclass
class Drift:
    """Accumulated drift per float tensor: the whole artifact, and the layer in isolation."""

    full: dict[str, DriftAccumulator]
    isolated: dict[str, DriftAccumulator]
    samples: int
    notes: list[str]


def _probe_runner(
    q_model: onnx.ModelProto,
    matches: list[TensorMatch],
    f_model: onnx.ModelProto,
    opts: dict[str, Any],
) -> tuple[Probe | None, Runner | None]:
    from nnship.backends.onnxruntime import OnnxRuntimeRunner
    from nnship.core.errors import BackendError

    probe = build_probe(q_model, matches, value_types(f_model))
    if probe is None:
        return None, None
    try:
        return probe, OnnxRuntimeRunner(probe.model, **opts)
    except BackendError as exc:  # an op the copy cannot run alone: estimate instead
        log.warning("Per-layer isolation unavailable (%s); estimating from whole-model drift", exc)
        return None, None


def accumulate(
    f_model: onnx.ModelProto,
    q_model: onnx.ModelProto,
    matches: list[TensorMatch],
    source: DataSource,
    batch_size: int,
    threads: int | None,
) -> Drift:
    from nnship.backends.onnxruntime import OnnxRuntimeRunner

    # Optimizations off: fusions would drop the very activations compared here, and a QDQ
    # graph then runs as float math on dequantized values (what its Q/DQ pairs specify).
    opts: dict[str, Any] = {"graph_optimization": "disabled", "threads": threads}
    f_run = OnnxRuntimeRunner(f_model, extra_outputs=[m.float_tensor for m in matches], **opts)
    q_run = OnnxRuntimeRunner(q_model, extra_outputs=[m.other_tensor for m in matches], **opts)
    probe, p_run = _probe_runner(q_model, matches, f_model, opts)
    drift = Drift({m.float_tensor: DriftAccumulator(m.float_tensor) for m in matches}, {}, 0, [])
    if probe is not None:
        drift.isolated = {t: DriftAccumulator(t) for t in probe.outputs}
    size = _batch_size(f_model, batch_size)
    for item in track(source.iter_batches(size), "explain: per-layer drift"):
        f_out = f_run.run(item.inputs)
        q_out = q_run.run(item.inputs)
        p_out: dict[str, Any] = {}
        if probe is not None and p_run is not None:
            feeds = {
                name: item.inputs[t] if name == t else f_out[t] for name, t in probe.inputs.items()
            }
            p_out = p_run.run(feeds, check=False)  # probe inputs carry no shapes to check
        drift.samples += next(iter(item.inputs.values())).shape[0]
        for m in matches:
            _update(drift, m, f_out, q_out, probe, p_out)
    for runner in (f_run, q_run, p_run):
        if runner is not None:
            runner.close()
    if drift.samples == 0:
        raise DataError(f"Data {source.describe()} yielded no samples")
    return drift


def _update(
    drift: Drift,
    m: TensorMatch,
    f_out: dict[str, np.ndarray],
    q_out: dict[str, np.ndarray],
    probe: Probe | None,
    p_out: dict[str, np.ndarray],
) -> None:
    acc = drift.full.get(m.float_tensor)
    if acc is None:
        return
    ref = f_out[m.float_tensor]
    try:
        acc.update(ref, q_out[m.other_tensor])
    except DataError:  # e.g. a layout changed by the converter: not comparable
        del drift.full[m.float_tensor]
        drift.isolated.pop(m.float_tensor, None)
        drift.notes.append(
            f"'{m.float_tensor}' vs '{m.other_tensor}': shapes {tuple(ref.shape)} and "
            f"{tuple(q_out[m.other_tensor].shape)} differ; not compared"
        )
        return
    iso = drift.isolated.get(m.float_tensor)
    if iso is not None and probe is not None:
        try:
            iso.update(ref, p_out[probe.outputs[m.float_tensor]])
        except DataError:
            del drift.isolated[m.float_tensor]
