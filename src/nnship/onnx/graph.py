"""Small helpers around `onnx` every stage shares: safe loading with clear errors, input/output
specs, atomic saving (external data over 2 GB), and exposing intermediate tensors as outputs."""

from __future__ import annotations

import logging
from pathlib import Path

import onnx
from onnx import TensorProto, helper

from nnship.core import TensorSpec
from nnship.core.errors import OnnxModelError
from nnship.core.fileio import atomic_path

log = logging.getLogger(__name__)

# protobuf refuses single messages over 2 GiB; leave headroom for the graph itself.
_EXTERNAL_DATA_THRESHOLD = 1_800_000_000


def load_onnx(path: Path | str, *, load_weights: bool = True) -> onnx.ModelProto:
    """Load an ONNX file; raise `OnnxModelError` naming the file if missing, truncated or not ONNX."""
    path = Path(path)
    if not path.is_file():
        raise OnnxModelError(f"ONNX file '{path}' does not exist")
    if path.stat().st_size == 0:
        raise OnnxModelError(f"ONNX file '{path}' is empty")
    try:
        model = onnx.load(str(path), load_external_data=load_weights)
    except Exception as exc:  # protobuf raises DecodeError, RuntimeError, ... for bad bytes
        raise OnnxModelError(
            f"'{path}' is not a readable ONNX model (truncated or another format): {exc}"
        ) from exc
    if not model.graph.node and not model.graph.output:
        raise OnnxModelError(f"'{path}' holds no ONNX graph (is it really an .onnx file?)")
    return model


def _dims(value_info: onnx.ValueInfoProto) -> tuple[int | str, ...]:
    dims: list[int | str] = []
    for i, d in enumerate(value_info.type.tensor_type.shape.dim):
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        else:
            dims.append(d.dim_param or f"{value_info.name}_dim{i}")
    return tuple(dims)


def _dtype(value_info: onnx.ValueInfoProto) -> str:
    elem = value_info.type.tensor_type.elem_type
    return helper.tensor_dtype_to_np_dtype(elem).name


def graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """Real graph inputs (initializers listed as inputs in old opsets are skipped)."""
    initializers = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in initializers]


def onnx_input_specs(model: onnx.ModelProto) -> list[TensorSpec]:
    """Input specs of an ONNX model; unnamed dynamic dims get a generated symbolic name."""
    return [TensorSpec(i.name, _dims(i), _dtype(i)) for i in graph_inputs(model)]


def onnx_output_specs(model: onnx.ModelProto) -> list[TensorSpec]:
    return [TensorSpec(o.name, _dims(o), _dtype(o)) for o in model.graph.output]


def onnx_output_names(model: onnx.ModelProto) -> list[str]:
    return [o.name for o in model.graph.output]


def save_onnx(model: onnx.ModelProto, path: Path | str) -> Path:
    """Save atomically; models over ~1.8 GB store weights as external data beside the file
    (`<name>.data`)."""
    path = Path(path)
    large = model.ByteSize() > _EXTERNAL_DATA_THRESHOLD if _can_size(model) else True
    with atomic_path(path) as tmp:
        if large:
            data_name = f"{path.name}.data"
            onnx.save_model(
                model,
                str(tmp),
                save_as_external_data=True,
                all_tensors_to_one_file=True,
                location=data_name,
                size_threshold=1024,
            )
            # external data was written beside tmp under its final name; nothing to rename
        else:
            onnx.save_model(model, str(tmp))
    return path


def _can_size(model: onnx.ModelProto) -> bool:
    try:
        model.ByteSize()
        return True
    except Exception:  # ByteSize overflows past 2 GB in some protobuf builds
        return False


def tensor_types(model: onnx.ModelProto, *, infer: bool = True) -> dict[str, int]:
    """Tensor name -> ONNX element type, for every tensor whose type is known: declared on the
    graph's inputs, outputs and value_info, and (`infer`, default) filled in by shape
    inference, which is best effort: a graph it cannot type keeps its declared types."""
    graph = model.graph
    if infer:
        try:
            graph = onnx.shape_inference.infer_shapes(model).graph
        except Exception as exc:  # noqa: BLE001 - untyped tensors are simply left out
            log.debug("shape inference failed (%s); using declared types only", exc)
    return {
        v.name: v.type.tensor_type.elem_type
        for v in [*graph.value_info, *graph.input, *graph.output]
        if v.type.HasField("tensor_type") and v.type.tensor_type.elem_type
    }


def add_outputs(model: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    """A copy of `model` whose graph also outputs the tensors in `names` (intermediate
    activations), for calibration and per-layer drift. Types come from shape inference;
    a tensor with no inferred type is added as float32."""
    inferred = model
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # inference is a convenience here: fall back to float32 outputs
        inferred = model
    known = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    known.update({v.name: v for v in inferred.graph.input})
    out = onnx.ModelProto()
    out.CopyFrom(model)
    existing = {o.name for o in out.graph.output}
    for name in names:
        if name in existing:
            continue
        if name in known and known[name].type.tensor_type.elem_type:
            out.graph.output.append(known[name])
        else:
            out.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
        existing.add(name)
    return out


def is_quantized(model: onnx.ModelProto) -> bool:
    """True if the graph already holds QuantizeLinear/DequantizeLinear or integer ops."""
    quant_ops = {
        "QuantizeLinear",
        "DequantizeLinear",
        "QLinearConv",
        "QLinearMatMul",
        "ConvInteger",
        "MatMulInteger",
        "DynamicQuantizeLinear",
    }
    return any(n.op_type in quant_ops for n in model.graph.node)


def onnx_precision(model: onnx.ModelProto) -> str:
    """The precision an ONNX graph holds: "int8" when quantized (`is_quantized`), "fp16" when
    any initializer is FLOAT16, else "fp32"."""
    if is_quantized(model):
        return "int8"
    fp16 = any(init.data_type == TensorProto.FLOAT16 for init in model.graph.initializer)
    return "fp16" if fp16 else "fp32"
