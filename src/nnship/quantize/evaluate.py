"""Run float and quantized ONNX models on data with ONNX Runtime and compare their outputs.

Used by the fallback and by the "does this transform measurably help?" decisions: top-1
agreement for 2-D logits, per-sample cosine otherwise, accuracy when labels are present.
Sessions are `OnnxRuntimeRunner`s, cosine and SQNR are `nnship.metrics.drift`' and latency
is `nnship.metrics.latency`'s, so the quantizer scores a model exactly as the validator does
(an all-zero output has cosine 0 against a non-zero reference, not 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from nnship.core import Batch, DataSource, check_batch
from nnship.core.errors import BackendError, QuantizationError
from nnship.metrics.drift import per_sample_cosine, sqnr_db
from nnship.onnx.graph import onnx_input_specs


def _runner(model: onnx.ModelProto | Path | str, *, threads: int = 2) -> Any:
    """An `OnnxRuntimeRunner` on CPU with every graph optimization on (QDQ fusions need them),
    one inter-op thread; a model ONNX Runtime cannot load is a `QuantizationError`."""
    from nnship.backends.onnxruntime import OnnxRuntimeRunner

    try:
        return OnnxRuntimeRunner(
            model, threads=threads, inter_op_threads=1, graph_optimization="all"
        )
    except BackendError as exc:
        raise QuantizationError(f"ONNX Runtime cannot load the model: {exc}") from exc


def make_session(model: onnx.ModelProto | Path | str, *, threads: int = 2):  # noqa: ANN201
    """The ONNX Runtime session of `_runner(model)` (for callers that run named outputs)."""
    return _runner(model, threads=threads).session


@dataclass
class Outputs:
    """Every output of a model over a data source (first axis = sample), and the labels."""

    arrays: dict[str, np.ndarray]
    labels: np.ndarray | None

    @property
    def primary(self) -> np.ndarray:
        return next(iter(self.arrays.values()))


def iter_checked(
    model: onnx.ModelProto, data: DataSource, *, max_samples: int | None, batch_size: int = 32
):  # noqa: ANN201
    """Yield (inputs, labels) of at most `max_samples` samples, each batch checked against the
    model's inputs (`DataError` names the tensor and both shapes). A fixed batch dimension in
    the model (foreign ONNX often pins 1) overrides `batch_size`."""
    specs = onnx_input_specs(model)
    fixed = {s.shape[0] for s in specs if s.shape and isinstance(s.shape[0], int)} - {0, -1}
    if len(fixed) == 1:
        batch_size = fixed.pop()
    seen = 0
    for item in data.iter_batches(batch_size):
        inputs: Batch = item.inputs
        if max_samples is not None and seen >= max_samples:
            break
        if max_samples is not None and seen + len(next(iter(inputs.values()))) > max_samples:
            keep = max_samples - seen
            inputs = {k: v[:keep] for k, v in inputs.items()}
            labels = None if item.labels is None else item.labels[:keep]
        else:
            labels = item.labels
        check_batch(specs, inputs, where=data.describe())
        seen += len(next(iter(inputs.values())))
        yield inputs, labels


def run_model(
    model: onnx.ModelProto, data: DataSource, *, max_samples: int | None = None
) -> Outputs:
    """Outputs of `model` on `data` (at most `max_samples` samples), concatenated."""
    runner = _runner(model)
    try:
        names = runner.output_names
        chunks: dict[str, list[np.ndarray]] = {n: [] for n in names}
        labels: list[np.ndarray] = []
        for inputs, batch_labels in iter_checked(model, data, max_samples=max_samples):
            out = runner.run(inputs, check=False)  # iter_checked checked the batch
            for name in names:
                chunks[name].append(np.asarray(out[name]))
            if batch_labels is not None:
                labels.append(np.asarray(batch_labels))
    finally:
        runner.close()
    arrays = {n: np.concatenate(v) for n, v in chunks.items()}
    return Outputs(arrays, np.concatenate(labels) if labels else None)


SQNR_EXACT_DB = 200.0
"""SQNR the quantizer scores identical outputs with (`sqnr_db` says None: no noise)."""


def _sqnr(ref: np.ndarray, diff: np.ndarray) -> float:
    value = sqnr_db(float((ref**2).sum()), float((diff**2).sum()))
    return SQNR_EXACT_DB if value is None else min(value, SQNR_EXACT_DB)


def compare(reference: Outputs, candidate: Outputs) -> dict[str, float]:
    """Metrics of `candidate` against `reference` on the first output: `cosine` (mean per
    sample), `max_abs`, `sqnr_db` (signal power over error power, decibels; capped at 200),
    and for 2-D logits `top1_agreement` (0..1), `top1_drop` (percentage points; with labels
    the accuracy drop, else 100 - agreement in %) and the accuracies."""
    ref, cand = reference.primary, candidate.primary
    ref64 = ref.astype(np.float64)
    cand64 = cand.astype(np.float64)
    diff = ref64 - cand64
    rows = len(ref)
    metrics: dict[str, float] = {
        "cosine": float(
            per_sample_cosine(ref64.reshape(rows, -1), cand64.reshape(rows, -1)).mean()
        ),
        "max_abs": float(np.abs(diff).max()),
        "sqnr_db": _sqnr(ref64, diff),
        "samples": float(rows),
    }
    if ref.ndim == 2 and ref.shape[1] > 1:
        ref_top, cand_top = ref.argmax(1), cand.argmax(1)
        metrics["top1_agreement"] = float((ref_top == cand_top).mean())
        labels = reference.labels
        if labels is not None and labels.ndim == 1 and len(labels) == len(ref):
            metrics["accuracy_float"] = float((ref_top == labels).mean())
            metrics["accuracy"] = float((cand_top == labels).mean())
            metrics["top1_drop"] = 100.0 * (metrics["accuracy_float"] - metrics["accuracy"])
        else:
            metrics["top1_drop"] = 100.0 * (1.0 - metrics["top1_agreement"])
    return metrics


def budget_misses(
    metrics: dict[str, float], max_top1_drop: float | None, min_cosine: float | None
) -> list[str]:
    """Human-readable budget violations (empty when the budget holds)."""
    misses = []
    if max_top1_drop is not None:
        if "top1_drop" not in metrics:
            raise QuantizationError(
                "max_top1_drop needs a model whose first output is 2-D logits; use min_cosine"
            )
        if metrics["top1_drop"] > max_top1_drop + 1e-9:
            misses.append(f"top-1 drop {metrics['top1_drop']:.2f} pts > {max_top1_drop}")
    if min_cosine is not None and metrics["cosine"] < min_cosine:
        misses.append(f"cosine {metrics['cosine']:.5f} < {min_cosine}")
    return misses


def score(metrics: dict[str, float]) -> tuple[float, float]:
    """Higher is better: (top-1 agreement or cosine, cosine). Used to pick between variants."""
    return (metrics.get("top1_agreement", metrics["cosine"]), metrics["cosine"])


def median_latency_ms(
    model: onnx.ModelProto | Path | str, batch: Batch, *, runs: int = 30, threads: int = 2
) -> float:
    """Median ONNX Runtime CPU latency (milliseconds) of one call on `batch`, after 5 warm-ups
    (`nnship.metrics.latency.measure_latency`). Rough on a shared machine: use `bench/` for
    figures worth quoting."""
    from nnship.metrics.config import LatencyConfig
    from nnship.metrics.latency import measure_latency

    config = LatencyConfig(
        min_warmup_runs=5, max_warmup_runs=5, runs=runs, min_runs=min(runs, 10), threads=threads
    )
    runner = _runner(model, threads=threads)
    try:
        return float(measure_latency(runner, batch, config).p50_ms)
    finally:
        runner.close()
