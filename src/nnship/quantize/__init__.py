"""Quantization: INT8 QDQ per backend profile, FP16, dynamic INT8, accuracy-aware fallback.

Public surface:
- `quantize(onnx_path, out_path, config, *, table=None, calib_data=None, eval_data=None,
  precision=None) -> QuantizeResult`
- `QuantizeConfig` (the recipe's `[quantize]` section; `method = "auto"` by default, see
  `nnship.quantize.selection`), `make_config(...)`, `ExcludeConfig`
- `QuantizeResult`, `FloatNode`
- `QuantProfile`, `get_profile(name)`, `profile_names()`
"""

from nnship.quantize.config import (
    DEFAULT_METHOD,
    METHOD_CHOICES,
    METHODS,
    PRECISIONS,
    PROFILES,
    CalibrationSettings,
    ExcludeConfig,
    QuantizeConfig,
    make_config,
)
from nnship.quantize.pipeline import quantize
from nnship.quantize.profiles import QuantProfile, get_profile, profile_names
from nnship.quantize.result import FloatNode, QuantizeResult

__all__ = [
    "DEFAULT_METHOD",
    "METHOD_CHOICES",
    "METHODS",
    "PRECISIONS",
    "PROFILES",
    "CalibrationSettings",
    "ExcludeConfig",
    "FloatNode",
    "QuantProfile",
    "QuantizeConfig",
    "QuantizeResult",
    "get_profile",
    "make_config",
    "profile_names",
    "quantize",
]
