"""Pre-quantization transforms from `nnship.calibration`: cross-layer equalization (depthwise
CNNs) and SmoothQuant-style activation smoothing (transformers), and when they apply.

The transforms themselves live in `nnship.calibration.equalize` / `.smooth`; this module only
decides whether a model is a candidate, and wraps the calls with clear errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import onnx
from onnx import helper

from nnship.core.errors import QuantizationError
from nnship.quantize.placement import GraphInfo


def has_depthwise_conv(model: onnx.ModelProto) -> bool:
    """True if some Conv has `group > 1` (equalization targets depthwise/grouped convs)."""
    for node in model.graph.node:
        if node.op_type == "Conv":
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            if int(attrs.get("group", 1)) > 1:
                return True
    return False


def has_weighted_matmul(model: onnx.ModelProto) -> bool:
    """True if some MatMul has a constant B (smoothing targets activation x weight matmuls)."""
    info = GraphInfo(model)
    return any(
        n.op_type == "MatMul" and len(n.input) > 1 and n.input[1] in info.float_constants
        for n in model.graph.node
    )


def _report_dict(report: Any) -> dict[str, Any]:
    if report is None:
        return {}
    if hasattr(report, "to_dict"):
        return dict(report.to_dict())
    if isinstance(report, dict):
        return dict(report)
    if hasattr(report, "__dict__"):
        return {k: v for k, v in vars(report).items() if not k.startswith("_")}
    return {"report": str(report)}


def _load(name: str) -> Callable[..., Any]:
    try:
        import nnship.calibration as calibration

        return getattr(calibration, name)
    except (ImportError, AttributeError) as exc:
        raise QuantizationError(
            f"nnship.calibration.{name} is not available in this installation"
        ) from exc


def equalize(model: onnx.ModelProto) -> tuple[onnx.ModelProto, dict[str, Any]]:
    """Cross-layer equalization (Nagel et al. 2019) via `nnship.calibration`."""
    out, report = _load("cross_layer_equalize")(model)
    return out, _report_dict(report)


def smooth(
    model: onnx.ModelProto,
    table: Any,
    alpha: float | str,
    *,
    data: Any = None,
    symmetric: bool = False,
) -> tuple[onnx.ModelProto, dict]:
    """SmoothQuant (Xiao et al. 2023) activation smoothing via `nnship.calibration`: one
    `alpha` for every layer, or "auto" (one per layer, searched on calibration `data` with the
    profile's activation signedness `symmetric`)."""
    if alpha == "auto":
        if data is None:
            raise QuantizationError("smoothing_alpha 'auto' needs calibration data")
        out, report = _load("smooth_with_alpha_search")(model, table, data, symmetric=symmetric)
    else:
        out, report = _load("smooth_activations")(model, table, alpha=float(alpha))
    return out, _report_dict(report)


def transform_available(name: str) -> bool:
    try:
        _load(name)
        return True
    except QuantizationError:
        return False


def correct_bias(
    float_model: onnx.ModelProto, quant_model: onnx.ModelProto, data: Any
) -> tuple[onnx.ModelProto, dict[str, Any]]:
    """Empirical bias correction (Nagel et al. 2019, section 4.2) via `nnship.calibration`."""
    out, report = _load("correct_bias")(float_model, quant_model, data)
    return out, _report_dict(report)
