"""Calibration: activation statistics collected once, range methods, and float-equivalent
pre-quantization transforms (cross-layer equalization, bias correction, activation smoothing).

See docs/calibration.md.
"""

from __future__ import annotations

from nnship.core.lazy import lazy_exports

__getattr__ = lazy_exports(
    __name__,
    {
        "BiasCorrectionReport": "nnship.calibration.bias_correction",
        "CalibrationConfig": "nnship.calibration.config",
        "CalibrationTable": "nnship.calibration.table",
        "CorrectedLayer": "nnship.calibration.bias_correction",
        "EqualizeReport": "nnship.calibration.equalize",
        "METHODS": "nnship.calibration.methods",
        "SmoothReport": "nnship.calibration.smooth",
        "TensorRange": "nnship.calibration.methods",
        "TensorStatistics": "nnship.calibration.table",
        "calibrate": "nnship.calibration.stage",
        "collect_statistics": "nnship.calibration.statistics",
        "compute_range": "nnship.calibration.methods",
        "correct_bias": "nnship.calibration.bias_correction",
        "cross_layer_equalize": "nnship.calibration.equalize",
        "read_tensorrt_cache": "nnship.calibration.table",
        "smooth_activations": "nnship.calibration.smooth",
        "smooth_with_alpha_search": "nnship.calibration.smooth_search",
        "write_tensorrt_cache": "nnship.calibration.table",
    },
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
