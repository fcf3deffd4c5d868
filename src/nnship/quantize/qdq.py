"""Write QuantizeLinear/DequantizeLinear with onnxruntime.quantization's QDQQuantizer, fed with
nnship's own ranges and node placement.

ONNX Runtime's Q/DQ machinery (scale/zero-point maths, per-channel weights, int32 bias,
Relu/Clip folding, opset handling) serves well, so nnship uses it; only the ranges
(`nnship.calibration`) and the placement (`nnship.quantize.placement`) are nnship's.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping

import numpy as np
import onnx

from nnship.core.errors import QuantizationError
from nnship.quantize.placement import Placement
from nnship.quantize.profiles import QuantProfile
from nnship.quantize.result import FloatNode

log = logging.getLogger(__name__)


class _DropOrtQuantizationRecords(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "/onnxruntime/quantization/" not in record.pathname.replace("\\", "/")


@contextlib.contextmanager
def quiet_ort_quantization() -> Iterator[None]:
    """Drop the root-logger chatter of onnxruntime.quantization ("Please consider to run
    pre-processing", per-tensor INFO lines) while it runs; nnship reports what matters itself."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    flt = _DropOrtQuantizationRecords()
    for handler in handlers:
        handler.addFilter(flt)
    root.addFilter(flt)
    try:
        yield
    finally:
        root.removeFilter(flt)
        for handler in handlers:
            handler.removeFilter(flt)


def _tensors_data(ranges: Mapping[str, tuple[float, float]], names: set[str]) -> object:
    from onnxruntime.quantization.calibrate import CalibrationMethod, TensorData, TensorsData

    data = {
        name: TensorData(lowest=np.float32(ranges[name][0]), highest=np.float32(ranges[name][1]))
        for name in sorted(names)
        if name in ranges
    }
    return TensorsData(CalibrationMethod.MinMax, data)


def write_qdq(
    model: onnx.ModelProto,
    ranges: Mapping[str, tuple[float, float]],
    placement: Placement,
    profile: QuantProfile,
    *,
    per_channel: bool = True,
) -> tuple[onnx.ModelProto, list[FloatNode]]:
    """Insert Q/DQ for the nodes in `placement`; returns the new model and the planned nodes
    ONNX Runtime's quantizer left without Q/DQ (with that reason). `model` is not modified.

    Weights are int8 symmetric (per-channel on the output axis when `per_channel`), activations
    follow `profile` (uint8 asymmetric or int8 symmetric), biases int32.
    """
    if not placement.nodes:
        out = onnx.ModelProto()
        out.CopyFrom(model)
        return out, []
    from onnxruntime.quantization.qdq_quantizer import QDQQuantizer
    from onnxruntime.quantization.quant_utils import update_opset_version

    work = onnx.shape_inference.infer_shapes(model)
    act_type, weight_type = profile.ort_types()
    work = update_opset_version(work, weight_type, act_type)
    op_types = sorted({placement.op_types[n] for n in placement.nodes})
    quantizer = QDQQuantizer(
        work,
        per_channel,
        False,  # reduce_range: not needed with VNNI, and TensorRT/OpenVINO want full int8
        weight_type,
        act_type,
        _tensors_data(ranges, placement.tensors),
        list(placement.nodes),
        [],
        op_types,
        profile.ort_extra_options(),
    )
    try:
        with quiet_ort_quantization():
            quantizer.quantize_model()
    except Exception as exc:  # ORT raises ValueError/KeyError with its own wording
        raise QuantizationError(
            f"onnxruntime.quantization could not insert Q/DQ ({type(exc).__name__}: {exc})"
        ) from exc
    quantizer.model.topological_sort()  # ORT sorts on save; we keep the proto in memory
    out = quantizer.model.model
    _strip_value_info(out)
    return out, _unquantized(out, placement)


def _strip_value_info(model: onnx.ModelProto) -> None:
    # Shape inference added value_info for the float graph; some entries (e.g. tensors now
    # produced by DequantizeLinear under a new name) are stale. ONNX Runtime re-infers.
    del model.graph.value_info[:]


def _unquantized(model: onnx.ModelProto, placement: Placement) -> list[FloatNode]:
    """Planned nodes that ended up with no DequantizeLinear feeding them (Relu/Clip folded into
    their producer have disappeared and count as quantized)."""
    dq_outputs = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    by_name = {n.name: n for n in model.graph.node}
    missing = []
    for name in placement.nodes:
        node = by_name.get(name)
        if node is None:
            continue
        if not any(i in dq_outputs for i in node.input):
            missing.append(
                FloatNode(
                    name,
                    node.op_type,
                    "left in float by onnxruntime.quantization (no Q/DQ inserted)",
                )
            )
    return missing
