"""Graph passes of the exporter: ONNX checker + shape inference, onnxslim simplification,
symbolic-dim renaming.

- `check_and_infer(path)`: requires an ONNX file (external data allowed); guarantees a loaded
  model that passed `onnx.checker.check_model(full_check=True)`, with inferred shapes.
  Raises `ExportError` naming what was checked.
- `simplify(model)`: returns a new, checked model simplified by onnxslim; the input is not
  modified. Raises `ExportError` if onnxslim fails or its output fails the checker.
- `rename_batch_dims(model)`: in place; axis 0 of the inputs gets the symbolic name "batch".
"""

from __future__ import annotations

import logging
from pathlib import Path

import onnx

from nnship.core.errors import ExportError

log = logging.getLogger(__name__)


def check_and_infer(path: Path, what: str) -> onnx.ModelProto:
    """Full ONNX check of the file at `path`, then load it with inferred shapes."""
    try:
        # The path form handles external data and models over 2 GB.
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:  # ValidationError, InferenceError
        raise ExportError(f"ONNX checker rejected {what}: {_first_line(exc)}") from exc
    model = onnx.load(str(path))
    try:
        return onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:  # shape inference is best effort beyond the strict check above
        log.debug("shape inference after export failed: %s", exc)
        return model


def simplify(model: onnx.ModelProto) -> onnx.ModelProto:
    """onnxslim (constant folding, dead-node and redundant-op removal, fusions) on a copy."""
    import onnxslim

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    try:
        slim = onnxslim.slim(copy)
    except Exception as exc:  # onnxslim raises whatever its passes raise
        raise ExportError(f"onnxslim failed: {type(exc).__name__}: {_first_line(exc)}") from exc
    if not isinstance(slim, onnx.ModelProto):
        raise ExportError("onnxslim returned no model")
    try:
        onnx.checker.check_model(slim, full_check=True)
    except Exception as exc:
        raise ExportError(
            f"ONNX checker rejected the simplified model: {_first_line(exc)}"
        ) from exc
    return slim


def emitted_opset(model: onnx.ModelProto) -> int:
    """The opset version of the default ONNX domain."""
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise ExportError("The exported model imports no default-domain opset")


def rename_batch_dims(model: onnx.ModelProto, name: str = "batch") -> None:
    """Give the symbolic axis 0 of the inputs (e.g. torch.export's "s43") the name `name`,
    everywhere that symbol appears (inputs, outputs, value_info)."""
    old = {
        i.type.tensor_type.shape.dim[0].dim_param
        for i in model.graph.input
        if i.type.tensor_type.shape.dim and i.type.tensor_type.shape.dim[0].dim_param
    }
    if not old:
        return
    values = list(model.graph.input) + list(model.graph.output) + list(model.graph.value_info)
    for value in values:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in old:
                dim.dim_param = name


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
