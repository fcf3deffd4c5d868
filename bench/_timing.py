"""The one interleaved-latency loop of the benchmarks.

Latency on this shared machine drifts, so every benchmark times its variants round-robin in
ONE pass: each round gives every variant a turn (optionally warmed up before the turn), and a
variant's figure is the median over all its timed calls. `nnship.metrics.latency.measure_latency`
times one runner on its own (warm-up until stable, GC off) and is what `nnship validate`
reports; this loop is for ratios between variants measured side by side.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import numpy as np


def interleaved_latency(
    calls: Mapping[str, Callable[..., object]],
    *args: object,
    rounds: int,
    runs: int,
    warmup: int = 0,
    initial_warmup: int = 0,
) -> dict[str, float]:
    """Median milliseconds per call of each `calls[name](*args)` from one interleaved pass:
    `initial_warmup` untimed calls of each first, then `rounds` rounds in which each variant
    gets `warmup` untimed and `runs` timed calls in turn."""
    for call in calls.values():
        for _ in range(initial_warmup):
            call(*args)
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            for _ in range(warmup):
                call(*args)
            for _ in range(runs):
                start = time.perf_counter_ns()
                call(*args)
                times[name].append((time.perf_counter_ns() - start) / 1e6)
    return {name: float(np.median(v)) for name, v in times.items()}
