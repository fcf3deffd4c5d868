"""Calibration: activation statistics collected once, range methods, and float-equivalent
pre-quantization transforms (cross-layer equalization, bias correction, activation smoothing).

See docs/calibration.md.
"""

from nnship.calibration.bias_correction import BiasCorrectionReport, CorrectedLayer, correct_bias
from nnship.calibration.config import CalibrationConfig
from nnship.calibration.equalize import EqualizeReport, cross_layer_equalize
from nnship.calibration.methods import METHODS, TensorRange, compute_range
from nnship.calibration.smooth import SmoothReport, smooth_activations
from nnship.calibration.smooth_search import smooth_with_alpha_search
from nnship.calibration.stage import calibrate
from nnship.calibration.statistics import collect_statistics
from nnship.calibration.table import (
    CalibrationTable,
    TensorStatistics,
    read_tensorrt_cache,
    write_tensorrt_cache,
)

__all__ = [
    "METHODS",
    "BiasCorrectionReport",
    "CalibrationConfig",
    "CalibrationTable",
    "CorrectedLayer",
    "EqualizeReport",
    "SmoothReport",
    "TensorRange",
    "TensorStatistics",
    "calibrate",
    "collect_statistics",
    "compute_range",
    "correct_bias",
    "cross_layer_equalize",
    "read_tensorrt_cache",
    "smooth_activations",
    "smooth_with_alpha_search",
    "write_tensorrt_cache",
]
