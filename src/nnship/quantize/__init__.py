"""Quantization: INT8 QDQ per backend profile, FP16, dynamic INT8, accuracy-aware fallback.

Public surface:
- `quantize(onnx_path, out_path, config, *, table=None, calib_data=None, eval_data=None,
  precision=None) -> QuantizeResult`
- `QuantizeConfig` (the recipe's `[quantize]` section; `method = "auto"` by default, see
  `nnship.quantize.selection`), `make_config(...)`, `ExcludeConfig`
- `QuantizeResult`, `FloatNode`
- `QuantProfile`, `get_profile(name)`, `profile_names()`
"""

from __future__ import annotations

from nnship.core.lazy import lazy_exports

__getattr__ = lazy_exports(
    __name__,
    {
        "CalibrationSettings": "nnship.quantize.config",
        "DEFAULT_METHOD": "nnship.quantize.config",
        "ExcludeConfig": "nnship.quantize.config",
        "FloatNode": "nnship.quantize.result",
        "METHODS": "nnship.quantize.config",
        "METHOD_CHOICES": "nnship.quantize.config",
        "PRECISIONS": "nnship.quantize.config",
        "PROFILES": "nnship.quantize.config",
        "QuantProfile": "nnship.quantize.profiles",
        "QuantizeConfig": "nnship.quantize.config",
        "QuantizeResult": "nnship.quantize.result",
        "get_profile": "nnship.quantize.profiles",
        "make_config": "nnship.quantize.config",
        "profile_names": "nnship.quantize.profiles",
        "quantize": "nnship.quantize.pipeline",
    },
)

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
