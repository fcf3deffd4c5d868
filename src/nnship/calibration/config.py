"""`CalibrationConfig`: the knobs of statistics collection and range selection."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Method = Literal["minmax", "percentile", "entropy", "mse"]


DEFAULT_MAX_SAMPLES = 512
"""Calibration samples used by default, by `nnship calibrate`, `nnship quantize` and the build
alike (a few hundred representative samples suffice for activation ranges)."""


class StatisticsConfig(BaseModel):
    """How activation statistics are collected: the one set of collection settings shared by
    `nnship calibrate` (`CalibrationConfig`), `nnship quantize` and the recipe's
    `[quantize.calibration]`. Invalid values are rejected at construction, naming the field.
    """

    model_config = ConfigDict(extra="forbid")

    num_bins: int = Field(default=2048, ge=16, le=1 << 16)
    """Histogram bins per side (resolution of |x|). Defaults to 2048, TensorRT's count."""
    batch_size: int = Field(default=8, ge=1)
    """Samples per inference batch. Defaults to 8 (a fixed model batch dim overrides it)."""
    max_samples: int | None = Field(default=DEFAULT_MAX_SAMPLES, ge=1)
    """Use at most this many samples; None uses all. Defaults to 512."""
    min_samples: int = Field(default=32, ge=1)
    """Fewer samples than this logs a warning naming the number. Defaults to 32."""
    max_exposed_mb: float | None = Field(default=None, gt=0.0)
    """Budget (MiB per batch) for intermediate tensors exposed by one inference run; the graph
    runs in consecutive segments to respect it. None (default): the largest tensor, at
    least 16 MiB."""


class CalibrationConfig(StatisticsConfig):
    """How statistics are collected and which range method `nnship calibrate` stores.

    Invalid values are rejected at construction (pydantic), naming the field.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Method = "entropy"
    """Range method stored with the table. Defaults to "entropy" (TensorRT's KL method)."""
    percentile: float = Field(default=99.99, gt=0.0, le=100.0)
    """Percent of |x| kept by the percentile method. Defaults to 99.99."""
    symmetric: bool | None = None
    """Symmetric `[-a, a]` ranges; None (default) lets each method use its convention."""
    extreme_abs: float = Field(default=1e4, gt=0.0)
    """|x| at or above which a tensor is degenerate (kept in float). Defaults to 1e4."""
