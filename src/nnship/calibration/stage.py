"""`calibrate`: the stage function behind `nnship calibrate` (collect, choose ranges, save)."""

from __future__ import annotations

import logging
from pathlib import Path

import onnx

from nnship.calibration.config import CalibrationConfig
from nnship.calibration.statistics import collect_with_settings
from nnship.calibration.table import CalibrationTable
from nnship.core import DataSource

log = logging.getLogger(__name__)


def calibrate(
    onnx_path: Path | str | onnx.ModelProto,
    data: DataSource,
    out_path: Path | str | None = None,
    config: CalibrationConfig | None = None,
    *,
    trt_cache: Path | str | None = None,
    trt_version: str | None = None,
) -> CalibrationTable:
    """Collect statistics of `onnx_path` over `data`, store `config.method`'s ranges in the
    table, and write the table to `out_path` (JSON, atomic) when given.

    `config` defaults to `CalibrationConfig()` (entropy, 2048 bins, batch 8). `trt_cache`
    also writes the ranges as a TensorRT calibration cache (`trt_version` defaults to
    `nnship.calibration.table.DEFAULT_TRT_VERSION`). Degenerate tensors get no range.
    """
    config = config or CalibrationConfig()
    table = collect_with_settings(onnx_path, data, config)
    ranges = table.ranges(
        config.method,
        percentile=config.percentile,
        symmetric=config.symmetric,
        extreme=config.extreme_abs,
    )
    table.stored_ranges = {
        "method": config.method,
        "params": {"percentile": config.percentile, "symmetric": config.symmetric},
        "values": {
            name: {"lo": r.lo, "hi": r.hi, "method": r.method} for name, r in ranges.items()
        },
        "degenerate": table.degenerate_tensors(extreme=config.extreme_abs),
    }
    if out_path is not None:
        table.save(out_path)
    if trt_cache is not None:
        kwargs = {"trt_version": trt_version} if trt_version else {}
        table.write_tensorrt_cache(trt_cache, ranges, **kwargs)
    return table
