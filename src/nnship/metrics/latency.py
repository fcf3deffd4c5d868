"""Latency you can trust: stable warm-up, a timed loop that times only `run`, honest memory.

The timed loop calls `runner.run(batch, check=False)` on the same input arrays every time,
reads `time.perf_counter_ns` around the call only, and keeps the garbage collector off.
Inputs are checked once, by the first (untimed-in-the-stats) call, whose latency is reported as
`first_run_ms` (it includes lazy initialisation some runtimes do on the first call).

Runners with their own asynchronous or multi-stream execution may expose
`run_throughput(batch, *, duration_s) -> dict | float` (a dict holding `throughput_per_s`, or
samples per second as a float), as `OpenVinoRunner` does with its `AsyncInferQueue`; it is called
after the latency loop and reported as `async_throughput_per_s` (the dict as `async_detail`).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import resource
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np

from nnship.core import Batch, DataSource, Runner
from nnship.core.errors import DataError
from nnship.metrics.config import LatencyConfig
from nnship.metrics.results import LatencyStats, MemoryStats

log = logging.getLogger(__name__)

_MB = 1e6


def latency_batch(data: DataSource, batch_size: int) -> Batch:
    """The first `batch_size` samples of `data` as contiguous arrays; rows are repeated when
    the data holds fewer samples."""
    first = next(iter(data.iter_batches(batch_size)), None)
    if first is None:
        raise DataError(f"Data {data.describe()} is empty: nothing to time")
    batch: Batch = {}
    for name, arr in first.inputs.items():
        arr = np.asarray(arr)
        if arr.shape[0] < batch_size:
            reps = -(-batch_size // arr.shape[0])
            arr = np.concatenate([arr] * reps, axis=0)[:batch_size]
        batch[name] = np.ascontiguousarray(arr)
    return batch


def _time_one(runner: Runner, batch: Batch) -> int:
    start = time.perf_counter_ns()
    runner.run(batch, check=False)
    return time.perf_counter_ns() - start


def _warm_up(runner: Runner, batch: Batch, config: LatencyConfig) -> tuple[int, bool]:
    """Run until the median of the last `stable_window` calls stops moving (bounded).
    Returns (calls made, whether it became stable)."""
    k = config.stable_window
    samples: list[int] = []
    deadline = time.perf_counter() + config.max_warmup_s
    while len(samples) < config.max_warmup_runs:
        samples.append(_time_one(runner, batch))
        n = len(samples)
        if n >= max(config.min_warmup_runs, 2 * k):
            last = float(np.median(samples[-k:]))
            prev = float(np.median(samples[-2 * k : -k]))
            if abs(last - prev) <= config.stable_tolerance * max(prev, 1.0):
                return n, True
        if time.perf_counter() > deadline and n >= config.min_warmup_runs:
            break
    return len(samples), False


def _timed_loop(runner: Runner, batch: Batch, config: LatencyConfig) -> np.ndarray:
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        if config.time_budget_s is None:
            out = np.empty(config.runs, dtype=np.int64)
            for i in range(config.runs):
                start = time.perf_counter_ns()
                runner.run(batch, check=False)
                out[i] = time.perf_counter_ns() - start
            return out
        samples: list[int] = []
        budget_ns = int(config.time_budget_s * 1e9)
        begin = time.perf_counter_ns()
        while len(samples) < config.max_runs:
            start = time.perf_counter_ns()
            runner.run(batch, check=False)
            end = time.perf_counter_ns()
            samples.append(end - start)
            if end - begin >= budget_ns and len(samples) >= config.min_runs:
                break
        return np.asarray(samples, dtype=np.int64)
    finally:
        if gc_was_enabled:
            gc.enable()


def latency_stats(
    samples_ns: np.ndarray,
    batch_size: int,
    *,
    warmup_runs: int = 0,
    warmup_stable: bool = False,
    first_run_ms: float | None = None,
    max_samples_kept: int = 2000,
) -> LatencyStats:
    """Summarize timed samples (nanoseconds): percentiles (linear interpolation), mean, sample
    standard deviation, coefficient of variation, throughput = batch_size / mean."""
    ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
    if ms.size == 0:
        raise ValueError("no latency samples")
    mean = float(ms.mean())
    std = float(ms.std(ddof=1)) if ms.size > 1 else 0.0
    p50, p90, p99 = (float(v) for v in np.percentile(ms, [50, 90, 99]))
    kept = ms
    if max_samples_kept and ms.size > max_samples_kept:
        kept = ms[np.linspace(0, ms.size - 1, max_samples_kept).round().astype(int)]
    elif max_samples_kept == 0:
        kept = ms[:0]
    return LatencyStats(
        batch_size=batch_size,
        runs=int(ms.size),
        warmup_runs=warmup_runs,
        warmup_stable=warmup_stable,
        first_run_ms=first_run_ms,
        p50_ms=p50,
        p90_ms=p90,
        p99_ms=p99,
        mean_ms=mean,
        std_ms=std,
        min_ms=float(ms.min()),
        max_ms=float(ms.max()),
        cv=std / mean if mean > 0 else 0.0,
        throughput_per_s=batch_size * 1000.0 / mean if mean > 0 else 0.0,
        samples_ms=[round(float(v), 6) for v in kept],
    )


def measure_latency(runner: Runner, batch: Batch, config: LatencyConfig) -> LatencyStats:
    """Time `runner` on `batch`: one checked first call, warm-up until stable, then `runs`
    calls (default 200) or a `time_budget_s` (seconds). Results in milliseconds."""
    batch_size = int(next(iter(batch.values())).shape[0]) if batch else 1
    start = time.perf_counter_ns()
    runner.run(batch, check=True)  # validates inputs once; the loops below skip the checks
    first_ms = (time.perf_counter_ns() - start) / 1e6
    warmup_runs, stable = _warm_up(runner, batch, config)
    if not stable and config.max_warmup_runs >= 2 * config.stable_window:
        log.info("%s: latency did not settle within the warm-up bound", runner.name)
    samples = _timed_loop(runner, batch, config)
    stats = latency_stats(
        samples,
        batch_size,
        warmup_runs=warmup_runs,
        warmup_stable=stable,
        first_run_ms=first_ms,
        max_samples_kept=config.max_samples_kept,
    )
    hook = getattr(runner, "run_throughput", None)
    if callable(hook):
        result = hook(batch, duration_s=config.throughput_s)
        if isinstance(result, dict):
            stats.async_throughput_per_s = float(result["throughput_per_s"])
            stats.async_detail = _jsonable(result)
        else:
            stats.async_throughput_per_s = float(result)
    return stats


def _jsonable(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, default=str))


# --- memory -------------------------------------------------------------------------------


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def rss_bytes() -> int | None:
    """Current resident set size: psutil when installed, else /proc/self/status VmRSS."""
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        kb = _status_kb("VmRSS")
        return None if kb is None else kb * 1024


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) for this process (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _peak_bytes() -> tuple[int | None, bool]:
    """(peak RSS, whether it is the process-lifetime maximum rather than a resettable one)."""
    kb = _status_kb("VmHWM")
    if kb is not None:
        return kb * 1024, False
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (maxrss if sys.platform == "darwin" else maxrss * 1024), True


@contextlib.contextmanager
def track_memory() -> Iterator[MemoryStats]:
    """Measure resident memory around a block; the yielded `MemoryStats` is filled on exit.

    tracemalloc cannot see native allocations (runtimes allocate in C++), so this reads the
    kernel's counters. On Linux the peak counter (VmHWM) is reset on entry through
    /proc/self/clear_refs, so `peak_rss_mb` is the peak during the block. Where it cannot be reset
    the only peak is ru_maxrss, a process-lifetime maximum: `peak_delta_mb` is then a lower
    bound (0 if the process was bigger before), and `method` says so.
    """
    stats = MemoryStats()
    reset = _reset_peak()
    before = rss_bytes()
    try:
        yield stats
    finally:
        after = rss_bytes()
        peak, lifetime = _peak_bytes()
        if lifetime or not reset:
            stats.method = "ru_maxrss/VmHWM process-lifetime peak (delta is a lower bound)"
        else:
            stats.method = "VmHWM reset via /proc/self/clear_refs (peak during the phase)"
        if before is not None:
            stats.rss_before_mb = before / _MB
        if after is not None:
            stats.rss_after_mb = after / _MB
        if peak is not None:
            peak = max(peak, after or 0)
            stats.peak_rss_mb = peak / _MB
            if before is not None:
                stats.peak_delta_mb = max(0.0, (peak - before) / _MB)


LoadedT = TypeVar("LoadedT")


def timed_load(factory: Callable[[], LoadedT]) -> tuple[LoadedT, float, MemoryStats]:
    """Call `factory` (e.g. `lambda: backend.load(path)`); returns (result, cold-start
    milliseconds, memory during the load)."""
    with track_memory() as memory:
        start = time.perf_counter_ns()
        result = factory()
        elapsed_ms = (time.perf_counter_ns() - start) / 1e6
    return result, elapsed_ms, memory
