"""Subnormal (denormal) float weights: find them, flush them to zero, verify the outputs.

A float32 weight with 0 < |w| < 2**-126 (`np.finfo(np.float32).tiny`) is subnormal; x86 CPUs
compute with such operands through a microcode assist that costs ~100 cycles per operation
unless the runtime sets FTZ/DAZ, so a model whose training left many weights there (weight
decay drives unused channels towards zero) can run several times slower than the same model
with them zeroed, for no change in its outputs: a subnormal contributes at most ~1e-38 to a
sum. Every float artifact nnship writes passes through `flush_subnormals`.

Contract: `flush_subnormals` requires a loaded ONNX (external data loaded); it returns a copy
(the input is never modified) in which every float32/float64 initializer and `Constant` value,
in the main graph and in subgraphs, has its subnormal entries set to +0.0, and a
`SubnormalReport` saying how many per tensor. Scales feeding QuantizeLinear/DequantizeLinear are
left alone (a zero scale would change the model's meaning). FLOAT16/BFLOAT16 tensors are
counted but not flushed: runtimes widen them to float32 before computing, where they are normal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

log = logging.getLogger(__name__)

_FLUSHED_TYPES = {TensorProto.FLOAT: np.float32, TensorProto.DOUBLE: np.float64}
_COUNTED_ONLY = {TensorProto.FLOAT16: np.float16}
_SCALE_INPUTS = {"QuantizeLinear": (1,), "DequantizeLinear": (1,)}
MAX_LISTED = 10
"""Tensors named in `SubnormalReport.describe()`; the JSON lists them all."""


@dataclass
class SubnormalReport:
    """Subnormal float weights found (and flushed) in one model. JSON-ready via `to_dict()`.

    `tensors` maps a tensor name to `{"subnormal": count, "size": elements, "dtype": ...,
    "flushed": bool}`; `float_weights` counts every float weight element; `max_abs_diff` is the
    largest output difference measured after flushing (None when no data verified it).
    """

    tensors: dict[str, dict[str, Any]] = field(default_factory=dict)
    float_weights: int = 0
    max_abs_diff: float | None = None
    verified_samples: int = 0

    @property
    def total(self) -> int:
        return sum(int(t["subnormal"]) for t in self.tensors.values())

    @property
    def flushed(self) -> int:
        return sum(int(t["subnormal"]) for t in self.tensors.values() if t["flushed"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "flushed": self.flushed,
            "float_weights": self.float_weights,
            "fraction": self.total / self.float_weights if self.float_weights else 0.0,
            "tensors": {k: dict(v) for k, v in self.tensors.items()},
            "max_abs_diff": self.max_abs_diff,
            "verified_samples": self.verified_samples,
        }

    def describe(self) -> str:
        """One line for a report note."""
        if not self.total:
            return "no subnormal float weights"
        worst = sorted(self.tensors.items(), key=lambda kv: -kv[1]["subnormal"] / kv[1]["size"])
        listed = ", ".join(
            f"{name} {t['subnormal']}/{t['size']} ({100 * t['subnormal'] / t['size']:.1f}%)"
            for name, t in worst[:MAX_LISTED]
        )
        more = f", ... {len(worst) - MAX_LISTED} more" if len(worst) > MAX_LISTED else ""
        share = 100 * self.total / self.float_weights if self.float_weights else 0.0
        verdict = (
            "outputs not verified here (compare the artifact's drift against the float model)"
            if self.max_abs_diff is None
            else f"outputs verified on {self.verified_samples} samples: max abs diff "
            f"{self.max_abs_diff:.3g}"
        )
        action = "flushed to zero" if self.flushed == self.total else f"{self.flushed} flushed"
        return (
            f"subnormal weights {action}: {self.total} of {self.float_weights} float weights "
            f"({share:.2f}%) in {len(self.tensors)} tensors [{listed}{more}]; {verdict}"
        )


def _graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _graphs(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    yield from _graphs(sub)


def _scale_names(graph: onnx.GraphProto) -> set[str]:
    names = set()
    for node in graph.node:
        for index in _SCALE_INPUTS.get(node.op_type, ()):
            if index < len(node.input):
                names.add(node.input[index])
    return names


def _tensors(model: onnx.ModelProto) -> Iterator[tuple[onnx.TensorProto, str, bool]]:
    """Every stored tensor (initializers, Constant values): (tensor, name, is a Q/DQ scale)."""
    for graph in _graphs(model.graph):
        scales = _scale_names(graph)
        for init in graph.initializer:
            yield init, init.name, init.name in scales
        for node in graph.node:
            if node.op_type != "Constant" or not node.output:
                continue
            for attr in node.attribute:
                if attr.name == "value" and attr.type == onnx.AttributeProto.TENSOR:
                    yield attr.t, node.output[0], node.output[0] in scales


def _subnormal_mask(array: np.ndarray) -> np.ndarray:
    return (array != 0) & (np.abs(array) < np.finfo(array.dtype).tiny)


def flush_subnormals(
    model: onnx.ModelProto, *, count_only: bool = False
) -> tuple[onnx.ModelProto, SubnormalReport]:
    """(copy of `model` with subnormal float32/float64 weights set to zero, what was found).
    `count_only` (default False) finds without changing anything."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    report = SubnormalReport()
    for tensor, name, is_scale in _tensors(out):
        if tensor.data_location == TensorProto.EXTERNAL:
            continue  # not loaded: nothing to read (load_onnx loads external data)
        flushable = tensor.data_type in _FLUSHED_TYPES
        if not flushable and tensor.data_type not in _COUNTED_ONLY:
            continue
        array = numpy_helper.to_array(tensor)
        report.float_weights += int(array.size)
        mask = _subnormal_mask(array)
        count = int(mask.sum())
        if not count:
            continue
        flush = flushable and not count_only and not is_scale
        report.tensors[name] = {
            "subnormal": count,
            "size": int(array.size),
            "dtype": array.dtype.name,
            "flushed": flush,
        }
        if flush:
            fixed = np.where(mask, np.zeros((), array.dtype), array)
            tensor.CopyFrom(numpy_helper.from_array(fixed.astype(array.dtype), tensor.name))
    if report.total:
        log.info("%s", report.describe())
    return out, report


def verify_flush(
    original: onnx.ModelProto,
    flushed: onnx.ModelProto,
    report: SubnormalReport,
    run_outputs: Callable[[onnx.ModelProto], dict[str, np.ndarray]],
) -> float:
    """Compare the outputs of both models, as `run_outputs` computes them (the caller picks the
    runtime and the samples: this layer runs nothing itself); store and return the largest
    absolute output difference."""
    before = run_outputs(original)
    after = run_outputs(flushed)
    worst = 0.0
    for name, ref in before.items():
        got = after[name]
        if ref.size and np.issubdtype(ref.dtype, np.floating):
            worst = max(worst, float(np.max(np.abs(ref.astype(np.float64) - got))))
    report.max_abs_diff = worst
    report.verified_samples = len(next(iter(before.values()), []))
    return worst
