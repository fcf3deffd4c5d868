"""`bench`: the public function behind `nnship bench` (one artifact's latency, cold start, memory)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from nnship.core import TensorSpec, example_batch
from nnship.core.environment import Environment, capture_environment
from nnship.core.fileio import write_json_atomic
from nnship.metrics.latency import latency_batch, measure_latency, track_memory
from nnship.metrics.results import LatencyStats, MemoryStats
from nnship.validate.commands import open_runner
from nnship.validate.config import LatencyConfig
from nnship.validate.validate import artifact_size_bytes


class BenchResult(BaseModel):
    """What `nnship bench` measured: one artifact's latency per batch size, cold start, memory."""

    label: str
    backend: str
    path: str
    size_bytes: int | None = None
    cold_start_ms: float
    load_memory: MemoryStats
    run_memory: MemoryStats | None = None
    latency: list[LatencyStats] = Field(default_factory=list)
    options: dict[str, Any] = Field(default_factory=dict)
    environment: Environment

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def save(self, path: Path | str) -> Path:
        return write_json_atomic(path, self.to_dict())


def bench(
    path: Path | str,
    *,
    backend: str | None = None,
    latency: LatencyConfig | None = None,
    data: Path | str | None = None,
    inputs: Sequence[str | TensorSpec] | None = None,
    backend_options: dict[str, Any] | None = None,
) -> BenchResult:
    """Time one artifact at each of `latency.batch_sizes` (default [1]) on the first samples of
    `data`, or on deterministic example inputs shaped by `inputs` (`NAME:SHAPE[:DTYPE]`, the
    batch axis replaced) or by the model's own input specs (other symbolic dims set to 1)."""
    latency = latency or LatencyConfig()
    options = dict(backend_options or {})
    if latency.threads is not None:
        options.setdefault("threads", latency.threads)
    opened = open_runner(path, backend=backend, **options)
    with opened.runner as runner:
        dataset = None
        if data is not None:
            from nnship.sources.data import open_data

            dataset = open_data(data, input_specs=list(runner.input_specs) or None)
        specs = [s if isinstance(s, TensorSpec) else TensorSpec.parse(s) for s in inputs or []]
        stats = []
        with track_memory() as run_memory:
            for size in latency.batch_sizes:
                if dataset is not None:
                    batch = latency_batch(dataset, size)
                else:
                    batch = _example(specs or runner.input_specs, size)
                stats.append(measure_latency(runner, batch, latency))
    target = Path(path)
    return BenchResult(
        label=opened.artifact.label,
        backend=opened.artifact.backend,
        path=str(target),
        size_bytes=artifact_size_bytes(Path(opened.artifact.path)) if target.exists() else None,
        cold_start_ms=opened.cold_start_ms,
        load_memory=opened.load_memory,
        run_memory=run_memory,
        latency=stats,
        options={k: v for k, v in options.items()},
        environment=capture_environment(latency.threads),
    )


def _example(specs: Sequence[TensorSpec], batch_size: int) -> dict[str, Any]:
    # the user's example shape (or the model's) with the batch axis set to batch_size
    shaped = [TensorSpec(s.name, ("batch", *s.shape[1:]), s.dtype) if s.shape else s for s in specs]
    return example_batch(shaped, batch=batch_size)
