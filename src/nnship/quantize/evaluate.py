"""Run float and quantized ONNX models on data with ONNX Runtime and compare their outputs.

Used by the fallback and by the "does this transform measurably help?" decisions: top-1
agreement for 2-D logits, per-sample cosine otherwise, accuracy when labels are present.
Sessions are `OnnxRuntimeRunner`s, cosine and SQNR are `nnship.metrics.drift`' and latency
is `nnship.metrics.latency`'s, so the quantizer scores a model exactly as the validator does
(an all-zero output has cosine 0 against a non-zero reference, not 1).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from nnship.backends.onnxruntime.outputs import Outputs, cpu_runner
from nnship.core import Batch
from nnship.core.errors import QuantizationError
from nnship.metrics.drift import per_sample_cosine, sqnr_db

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
    runner = cpu_runner(model, threads=threads)
    try:
        return float(measure_latency(runner, batch, config).p50_ms)
    finally:
        runner.close()
