"""What the metrics measure, as JSON-ready pydantic models: drift of one output, classification
agreement, latency and memory. The validator's `Report` holds them; so may any other caller."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    # extra="forbid" catches typos in hand-edited reports; `extra: dict` fields stay open.
    model_config = ConfigDict(extra="forbid")


class OutputMetrics(_Model):
    """Drift of one output against the baseline (see `nnship.metrics.drift`)."""

    name: str
    baseline_name: str
    shape: list[int] = Field(default_factory=list)
    """Per-sample shape (without the batch axis)."""
    max_abs_error: float | None = None
    mean_abs_error: float | None = None
    cosine_mean: float | None = None
    cosine_min: float | None = None
    cosine_global: float | None = None
    sqnr_db: float | None = None
    """dB; None with exact_match=True means infinite (identical outputs)."""
    exact_match: bool = False
    nonfinite_count: int = 0


class ClassificationMetrics(_Model):
    """Percentages (0..100) on the classification output."""

    output: str
    samples: int
    top1_agreement: float | None = None
    top5_agreement: float | None = None
    accuracy: float | None = None
    top5_accuracy: float | None = None
    top1_drop: float | None = None
    """Percentage points: baseline accuracy - accuracy with labels, else 100 - top1_agreement."""


class LatencyStats(_Model):
    """Latency of `run` at one batch size, in milliseconds (throughput in samples/second)."""

    batch_size: int
    runs: int
    warmup_runs: int
    warmup_stable: bool
    first_run_ms: float | None = None
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    cv: float
    """Coefficient of variation, std / mean."""
    throughput_per_s: float
    async_throughput_per_s: float | None = None
    """From the runner's own `run_throughput` (async requests / streams), when it has one."""
    async_detail: dict[str, Any] | None = None
    samples_ms: list[float] = Field(default_factory=list)
    """Raw samples for plotting, evenly subsampled to at most `max_samples_kept`."""

    def percentile(self, p: int) -> float:
        return {50: self.p50_ms, 90: self.p90_ms, 99: self.p99_ms}[p]


class MemoryStats(_Model):
    """Resident memory in megabytes (10**6 bytes) around one phase; `method` says how."""

    rss_before_mb: float | None = None
    rss_after_mb: float | None = None
    peak_rss_mb: float | None = None
    peak_delta_mb: float | None = None
    method: str = ""
