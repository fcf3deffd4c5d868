"""ONNX Runtime's `quantize_static` as the benchmarks' anchor: U8S8 QDQ fed one sample at a time."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np


def ort_quantize_static(
    src: Path | str, out: Path | str, feeds: Iterable[dict[str, np.ndarray]], **options: Any
) -> None:
    """`onnxruntime.quantization.quantize_static(src, out)` in QDQ format, uint8 activations,
    int8 weights, calibrated on `feeds` (one input dict per call); `options` (per_channel,
    calibrate_method, ...) go to quantize_static as they are."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(feeds)

        def get_next(self):  # noqa: ANN202 - ORT's interface
            return next(self.items, None)

    quantize_static(
        str(src),
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        **options,
    )


def single_samples(data: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """`data` (arrays sharing a leading batch axis) as one dict per sample (batch 1)."""
    n = len(next(iter(data.values())))
    return [{k: v[i : i + 1] for k, v in data.items()} for i in range(n)]
