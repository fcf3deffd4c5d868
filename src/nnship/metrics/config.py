"""How latency is measured: the `[validate.latency]` recipe table (pydantic, `extra="forbid"`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class LatencyConfig(BaseModel):
    """How latency is measured (see `nnship.metrics.latency.measure_latency`).

    Warm-up runs at least `min_warmup_runs` calls, then continues until the median of the last
    `stable_window` calls moves by less than `stable_tolerance` (relative) between consecutive
    windows, stopping at `max_warmup_runs` calls or `max_warmup_s` seconds, whichever comes first.
    Then `runs` timed calls (default 200), or, when `time_budget_s` is set, as many calls as fit
    in that many seconds (at least `min_runs`, at most `max_runs`).
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    min_warmup_runs: int = Field(default=5, ge=0)
    max_warmup_runs: int = Field(default=200, ge=0)
    max_warmup_s: float = Field(default=10.0, gt=0)
    stable_window: int = Field(default=10, ge=2)
    stable_tolerance: float = Field(default=0.02, gt=0, lt=1)
    runs: int = Field(default=200, ge=1)
    time_budget_s: float | None = Field(default=None, gt=0)
    min_runs: int = Field(default=10, ge=1)
    max_runs: int = Field(default=100_000, ge=1)
    batch_sizes: list[int] = Field(default_factory=lambda: [1], min_length=1)
    threads: int | None = Field(default=None, ge=1)
    throughput_s: float = Field(default=2.0, gt=0)
    """Seconds given to a runner's own async/streams throughput method, when it has one."""
    max_samples_kept: int = Field(default=2000, ge=0)
    """Raw samples (ms) stored in the report for plotting; evenly subsampled beyond this."""

    @model_validator(mode="after")
    def _check_bounds(self) -> LatencyConfig:
        if self.min_warmup_runs > self.max_warmup_runs:
            raise ValueError("min_warmup_runs must be <= max_warmup_runs")
        if self.min_runs > self.max_runs:
            raise ValueError("min_runs must be <= max_runs")
        if any(b < 1 for b in self.batch_sizes):
            raise ValueError("batch_sizes must all be >= 1")
        return self
