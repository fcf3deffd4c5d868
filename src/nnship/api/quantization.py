"""`nnship calibrate` and `nnship quantize`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from nnship.api._common import DataArg, onnx_specs, open_data_arg

if TYPE_CHECKING:
    from nnship.calibration import CalibrationConfig, CalibrationTable
    from nnship.quantize.config import QuantizeConfig
    from nnship.quantize.result import QuantizeResult


def calibrate(
    onnx_path: str | Path,
    data: DataArg,
    out_path: str | Path | None = None,
    config: CalibrationConfig | None = None,
    *,
    trt_cache: str | Path | None = None,
    trt_version: str | None = None,
) -> CalibrationTable:
    """`nnship calibrate`: collect activation statistics of `onnx_path` once over `data` (a
    path, checked against the model's inputs, or a `DataSource`) and store `config.method`'s
    ranges. Writes the table to `out_path` (JSON) when given, and a TensorRT calibration cache
    to `trt_cache`. `config` defaults to `CalibrationConfig()`. Returns the `CalibrationTable`."""
    from nnship.calibration import calibrate as _calibrate

    source = open_data_arg(data, onnx_specs(onnx_path))
    return _calibrate(
        onnx_path, source, out_path, config, trt_cache=trt_cache, trt_version=trt_version
    )


def quantize(
    onnx_path: str | Path,
    out_path: str | Path,
    config: QuantizeConfig | None = None,
    *,
    table: CalibrationTable | str | Path | None = None,
    calib_data: DataArg | None = None,
    eval_data: DataArg | None = None,
    eval_limit: int | None = None,
) -> QuantizeResult:
    """`nnship quantize`: write one quantized ONNX (QDQ INT8, FP16 or dynamic INT8).

    `config` is a `QuantizeConfig` (default INT8, ONNX Runtime profile); `table` a
    `CalibrationTable` or its JSON path (statistics reused instead of collected on
    `calib_data`); `eval_data` (at most `eval_limit` samples) scores candidates for method
    "auto", transforms and the accuracy budget. Returns the `QuantizeResult` (float nodes with
    reasons, reverted nodes, metrics against float)."""
    from nnship.quantize import quantize as _quantize
    from nnship.quantize.config import QuantizeConfig

    if isinstance(table, str | Path):
        from nnship.calibration import CalibrationTable

        table = CalibrationTable.load(table)
    calib = evaluation = None
    if calib_data is not None or eval_data is not None:
        specs = onnx_specs(onnx_path)
        if calib_data is not None:
            calib = open_data_arg(calib_data, specs)
        if eval_data is not None:
            evaluation = open_data_arg(eval_data, specs, limit=eval_limit)
    return _quantize(
        onnx_path,
        out_path,
        config or QuantizeConfig(),
        table=table,
        calib_data=calib,
        eval_data=evaluation,
    )
