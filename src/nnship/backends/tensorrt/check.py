"""Lint an ONNX model for TensorRT's ONNX parser on any machine (no GPU, no TensorRT needed).

`check_tensorrt(path)` returns `Finding`s, each naming the node and the rule it breaks:

- `opset`: default-domain opset must be >= 13 (per-channel Q/DQ) and within the parser's range.
- `unsupported-op`: every op must be in `tensorrt_ops.SUPPORTED_OPS` (default domain only).
- `constant-input`, `attribute`, `single-output`, `dilations`: the parser's documented
  restrictions on particular ops.
- Q/DQ (explicit quantization, TensorRT's only INT8 mode from version 11):
  `qdq-constant` (scale and zero point are constants), `int8-only` (zero point / output type is
  INT8; a missing zero point means UINT8 in ONNX), `zero-point-zero`, `scale-positive-finite`,
  `per-channel-axis` (weights per-channel on the output-channel axis of Conv / ConvTranspose /
  MatMul / Gemm, scale length matching that axis), `per-tensor-activations`.
- `dtype`: DOUBLE tensors are cast down by TensorRT (warning); strings are unsupported.

Written by hand because no library lints for TensorRT offline: Polygraphy needs TensorRT
installed, and the parser itself needs a GPU build of TensorRT.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from nnship.backends.tensorrt import ops
from nnship.onnx.graph import load_onnx

_QDQ = ("QuantizeLinear", "DequantizeLinear")
_DEFAULT_DOMAINS = ("", "ai.onnx")


@dataclass(frozen=True)
class Finding:
    """One problem found: the rule, the node (name and op type) and what to do."""

    rule: str
    node: str
    op_type: str
    message: str
    severity: str = "error"
    """"error" (the parser or builder would reject it) or "warning" (it may build, but not as
    intended)."""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    def __str__(self) -> str:
        where = f"{self.node} ({self.op_type})" if self.node else self.op_type or "model"
        return f"{self.severity}: [{self.rule}] {where}: {self.message}"


class _Graph:
    """Constants and consumers of one (sub)graph, plus the outer graphs' constants."""

    def __init__(self, graph: onnx.GraphProto, outer: dict[str, np.ndarray] | None = None):
        self.graph = graph
        self.constants: dict[str, np.ndarray] = dict(outer or {})
        for init in graph.initializer:
            self.constants[init.name] = numpy_helper.to_array(init)
        for node in graph.node:
            if node.op_type == "Constant" and node.output:
                for attr in node.attribute:
                    if attr.name == "value":
                        self.constants[node.output[0]] = numpy_helper.to_array(attr.t)
        self.consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
        for node in graph.node:
            for i, name in enumerate(node.input):
                if name:
                    self.consumers.setdefault(name, []).append((node, i))
        self.producers = {out: node for node in graph.node for out in node.output if out}


def _attr(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    for attr in node.attribute:
        if attr.name == name:
            return onnx.helper.get_attribute_value(attr)
    return default


def _label(node: onnx.NodeProto) -> str:
    return node.name or (node.output[0] if node.output else "")


def summarize(findings: list[Finding], limit: int = 10) -> str:
    """The first `limit` findings, one per line, and how many more there are."""
    lines = [str(f) for f in findings[:limit]]
    if len(findings) > limit:
        lines.append(f"... and {len(findings) - limit} more")
    return "\n  ".join(lines)


def check_tensorrt(model: Path | str | onnx.ModelProto) -> list[Finding]:
    """Lint `model` (a path or a loaded ModelProto) for TensorRT; returns the findings
    (empty when clean), errors first. Raises `OnnxModelError` if the file is unreadable."""
    if not isinstance(model, onnx.ModelProto):
        model = load_onnx(model)
    findings = list(_check_opset(model))
    findings += list(_check_graph(_Graph(model.graph)))
    findings += list(_check_dtypes(model.graph))
    return sorted(findings, key=lambda f: f.severity != "error")


def _check_opset(model: onnx.ModelProto) -> Iterator[Finding]:
    opset = next((o.version for o in model.opset_import if o.domain in _DEFAULT_DOMAINS), None)
    lo, hi = ops.OPSET_RANGE
    if opset is None:
        yield Finding("opset", "", "model", "the model imports no default-domain opset")
    elif opset < max(13, lo):
        yield Finding(
            "opset",
            "",
            "model",
            f"opset {opset} is below 13: per-channel Q/DQ and TensorRT's explicit quantization "
            "need opset >= 13; re-export with a newer opset",
        )
    elif opset > hi:
        yield Finding(
            "opset",
            "",
            "model",
            f"opset {opset} is newer than TensorRT {ops.TENSORRT_VERSION}'s parser range "
            f"{lo}-{hi}; export with opset <= {hi} to be safe",
            "warning",
        )


def _check_graph(g: _Graph) -> Iterator[Finding]:
    for node in g.graph.node:
        yield from _check_op(node, g)
        if node.op_type in _QDQ:
            yield from _check_qdq(node, g)
        for attr in node.attribute:  # If / Loop / Scan bodies
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _check_graph(_Graph(attr.g, g.constants))
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    yield from _check_graph(_Graph(sub, g.constants))


def _check_op(node: onnx.NodeProto, g: _Graph) -> Iterator[Finding]:
    name, op = _label(node), node.op_type
    if node.domain not in _DEFAULT_DOMAINS:
        yield Finding(
            "unsupported-op",
            name,
            op,
            f"custom-domain op '{node.domain}.{op}' is not in TensorRT's ONNX parser (it needs "
            "a TensorRT plugin); export without contrib ops",
        )
        return
    if op not in ops.SUPPORTED_OPS:
        why = "is listed as unsupported" if op in ops.UNSUPPORTED_OPS else "is not in the list"
        yield Finding(
            "unsupported-op",
            name,
            op,
            f"{op} {why} of ops TensorRT {ops.TENSORRT_VERSION}'s ONNX parser supports",
        )
        return
    if op in ops.CONSTANT_INPUTS:
        index, input_name = ops.CONSTANT_INPUTS[op]
        if len(node.input) > index and node.input[index] and node.input[index] not in g.constants:
            yield Finding(
                "constant-input",
                name,
                op,
                f"input '{input_name}' ({node.input[index]}) must be a build-time constant "
                "(an initializer) for TensorRT",
            )
    for attr_name, bad in ops.UNSUPPORTED_ATTRIBUTES.get(op, {}).items():
        value = _attr(node, attr_name)
        if isinstance(value, bytes):
            value = value.decode()
        if value is not None and value in bad:  # type: ignore[operator]
            yield Finding("attribute", name, op, f"{attr_name}={value!r} is not supported")
    if op in ops.SINGLE_OUTPUT_OPS and any(node.output[1:]):
        yield Finding("single-output", name, op, ops.SINGLE_OUTPUT_OPS[op])
    if op in ops.UNIT_DILATION_OPS and any(d != 1 for d in _attr(node, "dilations", []) or []):
        yield Finding("dilations", name, op, "pooling dilations must be all ones")


def _check_qdq(node: onnx.NodeProto, g: _Graph) -> Iterator[Finding]:
    name, op = _label(node), node.op_type
    scale_name = node.input[1] if len(node.input) > 1 else ""
    zp_name = node.input[2] if len(node.input) > 2 else ""
    if scale_name not in g.constants or (zp_name and zp_name not in g.constants):
        yield Finding(
            "qdq-constant",
            name,
            op,
            "scale and zero point must be constants (initializers) for TensorRT",
        )
        return
    scale = np.asarray(g.constants[scale_name], dtype=np.float64)
    yield from _check_int8(node, g, zp_name)
    if not (np.isfinite(scale).all() and (scale > 0).all()):
        bad = scale[~(np.isfinite(scale) & (scale > 0))]
        yield Finding(
            "scale-positive-finite",
            name,
            op,
            f"scale '{scale_name}' holds {bad.size} value(s) that are zero, negative or not "
            f"finite (e.g. {bad.flat[0]!r})",
        )
    if _attr(node, "block_size", 0):
        yield Finding("int8-only", name, op, "blocked (INT4-style) quantization is not INT8")
    elif scale.ndim == 1 and scale.size > 1:
        yield from _check_per_channel(node, g, scale)


def _check_int8(node: onnx.NodeProto, g: _Graph, zp_name: str) -> Iterator[Finding]:
    name, op = _label(node), node.op_type
    if zp_name:
        zp = g.constants[zp_name]
        dtype = zp.dtype.name
        if dtype not in ops.QUANTIZED_TYPES:
            hint = (
                "a quantized bias? keep biases in float for TensorRT"
                if dtype == "int32"
                else "use nnship's tensorrt profile: symmetric int8"
            )
            yield Finding(
                "int8-only",
                name,
                op,
                f"zero point '{zp_name}' is {dtype}; TensorRT's explicit quantization needs "
                f"INT8 ({hint})",
            )
        elif np.any(np.asarray(zp) != 0):
            yield Finding(
                "zero-point-zero",
                name,
                op,
                f"zero point '{zp_name}' has non-zero values (e.g. "
                f"{int(np.asarray(zp)[np.asarray(zp) != 0].flat[0])}); TensorRT needs "
                "symmetric quantization with zero point 0",
            )
        return
    out_type = _attr(node, "output_dtype", 0) if op == "QuantizeLinear" else 0
    if op == "QuantizeLinear" and out_type == TensorProto.INT8:
        return
    if op == "DequantizeLinear" and node.input[0] in g.constants:
        if g.constants[node.input[0]].dtype.name in ops.QUANTIZED_TYPES:
            return
    yield Finding(
        "int8-only",
        name,
        op,
        "no zero point given, so ONNX makes it UINT8; give an int8 zero point of 0",
    )


def _weight_source(node: onnx.NodeProto, g: _Graph) -> str | None:
    """The initializer a Q/DQ pair quantizes, or None for activations."""
    source = node.input[0]
    if source in g.constants:
        return source
    producer = g.producers.get(source)
    if producer is not None and producer.op_type == "QuantizeLinear":
        return producer.input[0] if producer.input[0] in g.constants else None
    return None


def _expected_axis(consumer: onnx.NodeProto, index: int, rank: int) -> int | None:
    op = consumer.op_type
    if op == "Conv" and index == 1:
        return 0
    if op == "ConvTranspose" and index == 1:
        return 1
    if op == "MatMul" and index == 1:
        return rank - 1
    if op == "Gemm" and index == 1:
        return 0 if _attr(consumer, "transB", 0) else 1
    return None


def _check_per_channel(node: onnx.NodeProto, g: _Graph, scale: np.ndarray) -> Iterator[Finding]:
    name, op = _label(node), node.op_type
    weight = _weight_source(node, g)
    if weight is None:
        yield Finding(
            "per-tensor-activations",
            name,
            op,
            f"activation '{node.input[0]}' is quantized per-channel ({scale.size} scales); "
            "TensorRT quantizes activations per-tensor only",
        )
        return
    shape = g.constants[weight].shape
    axis = int(_attr(node, "axis", 1))
    axis = axis + len(shape) if axis < 0 else axis
    if not 0 <= axis < len(shape) or shape[axis] != scale.size:
        yield Finding(
            "per-channel-axis",
            name,
            op,
            f"{scale.size} scales on axis {axis} of weight '{weight}' with shape "
            f"{list(shape)}: the scale length must equal that axis' size",
        )
        return
    if op != "DequantizeLinear":
        return
    for consumer, index in g.consumers.get(node.output[0], []):
        want = _expected_axis(consumer, index, len(shape))
        if want is not None and want != axis:
            yield Finding(
                "per-channel-axis",
                name,
                op,
                f"weight '{weight}' of {consumer.op_type} '{_label(consumer)}' is quantized "
                f"per-channel on axis {axis}; TensorRT needs the output-channel axis {want}",
            )


def _check_dtypes(graph: onnx.GraphProto) -> Iterator[Finding]:
    values = [(v.name, v.type.tensor_type.elem_type, "tensor") for v in graph.input]
    values += [(v.name, v.type.tensor_type.elem_type, "output") for v in graph.output]
    values += [(i.name, i.data_type, "initializer") for i in graph.initializer]
    for name, elem, kind in values:
        if elem == TensorProto.DOUBLE:
            yield Finding(
                "dtype",
                name,
                kind,
                "DOUBLE is cast down to FLOAT by TensorRT (values clamped to +-FLT_MAX); "
                "export in float32",
                "warning",
            )
        elif elem == TensorProto.STRING:
            yield Finding("dtype", name, kind, "string tensors are not supported by TensorRT")
