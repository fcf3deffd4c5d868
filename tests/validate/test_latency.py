"""Latency measurement on runners with a known cost; memory tracking."""

from __future__ import annotations

import numpy as np
import pytest
from _validate_helpers import FunctionRunner, SleepRunner

from nnship.core import TensorSpec
from nnship.core.errors import DataError
from nnship.metrics.latency import latency_batch, latency_stats, measure_latency, track_memory
from nnship.sources import ArrayData
from nnship.validate.config import LatencyConfig


def _batch(n: int = 1) -> dict[str, np.ndarray]:
    return {"x": np.zeros((n, 4), np.float32)}


def test_sleeping_runner_latency_is_ordered_and_plausible() -> None:
    runner = SleepRunner(0.002)
    config = LatencyConfig(runs=15, min_warmup_runs=2, max_warmup_runs=4, stable_window=2)
    stats = measure_latency(runner, _batch(), config)
    assert stats.runs == 15 and len(stats.samples_ms) == 15
    assert stats.min_ms <= stats.p50_ms <= stats.p90_ms <= stats.p99_ms <= stats.max_ms
    assert 2.0 <= stats.p50_ms < 100.0  # sleep(2 ms) never returns early; loaded CI is slow
    assert stats.throughput_per_s == pytest.approx(1000.0 / stats.mean_ms)
    assert 1 <= stats.warmup_runs <= 4 and stats.first_run_ms is not None
    assert runner.calls == 1 + stats.warmup_runs + 15


def test_time_budget_bounds_runs() -> None:
    runner = SleepRunner(0.001)
    config = LatencyConfig(time_budget_s=0.05, min_runs=3, max_runs=1000, max_warmup_runs=0,
                           min_warmup_runs=0)  # fmt: skip
    stats = measure_latency(runner, _batch(), config)
    assert 3 <= stats.runs < 60  # each call sleeps >= 1 ms, so 50 ms holds < 50 calls
    assert stats.warmup_runs == 0 and not stats.warmup_stable


def test_warmup_stops_once_the_median_is_stable() -> None:
    runner = FunctionRunner(lambda b: {"output": b["x"]}, [TensorSpec("x", ("batch", 4))],
                            ["output"])  # fmt: skip
    config = LatencyConfig(runs=5, min_warmup_runs=2, max_warmup_runs=5000, stable_window=5,
                           stable_tolerance=0.5)  # fmt: skip
    stats = measure_latency(runner, _batch(), config)
    assert stats.warmup_stable and stats.warmup_runs < 5000


def test_stats_subsample_raw_samples_and_compute_cv() -> None:
    samples = np.arange(1, 5001, dtype=np.int64) * 1_000_000  # 1..5000 ms
    stats = latency_stats(samples, 4, max_samples_kept=100)
    assert len(stats.samples_ms) == 100
    assert stats.samples_ms[0] == 1.0 and stats.samples_ms[-1] == 5000.0
    assert stats.p50_ms == pytest.approx(2500.5)
    assert stats.cv == pytest.approx(stats.std_ms / stats.mean_ms)
    assert stats.throughput_per_s == pytest.approx(4 * 1000 / 2500.5)


def test_first_call_checks_inputs() -> None:
    with pytest.raises(DataError, match="'x'"):
        measure_latency(SleepRunner(0.0), {"x": np.zeros((1, 5), np.float32)}, LatencyConfig())


def test_async_throughput_hook_is_reported() -> None:
    runner = SleepRunner(0.0)
    runner.run_throughput = lambda batch, duration_s: {"throughput_per_s": 123.0, "num_requests": 4}
    stats = measure_latency(runner, _batch(), LatencyConfig(runs=2, max_warmup_runs=0,
                                                             min_warmup_runs=0))  # fmt: skip
    assert stats.async_throughput_per_s == 123.0 and stats.async_detail["num_requests"] == 4


def test_latency_batch_repeats_rows_when_data_is_short() -> None:
    data = ArrayData({"x": np.arange(12, dtype=np.float32).reshape(3, 4)})
    batch = latency_batch(data, 5)
    assert batch["x"].shape == (5, 4) and batch["x"].flags.c_contiguous
    assert np.array_equal(batch["x"][3], batch["x"][0])


def test_track_memory_sees_a_native_allocation() -> None:
    with track_memory() as mem:
        block = np.ones(40_000_000 // 8)  # 40 MB, touched
        block += 1
    del block
    assert mem.peak_rss_mb is not None and mem.peak_delta_mb is not None
    assert mem.method
    if "clear_refs" in mem.method:  # a resettable peak: the 40 MB must show
        assert mem.peak_delta_mb >= 30
