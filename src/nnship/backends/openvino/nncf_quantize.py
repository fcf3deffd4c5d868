"""INT8 for OpenVINO via NNCF: post-training quantization of the float IR.

The other INT8 path (OpenVINO converting nnship's QDQ ONNX) needs no code here. Which one is
the default was measured (bench/backends.py, docs/backends.md).
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nnship.backends.openvino.options import OpenVinoOptions
from nnship.core import DataSource
from nnship.core.errors import BackendError, DataError, require
from nnship.onnx.graph import load_onnx

log = logging.getLogger(__name__)

# ONNX op type -> OpenVINO op type(s) after conversion, so exclusions written against the
# ONNX graph (as nnship's quantize config is) mean the same ops in the IR.
ONNX_TO_OPENVINO_TYPES: dict[str, tuple[str, ...]] = {
    "Conv": ("Convolution", "GroupConvolution"),
    "ConvTranspose": ("ConvolutionBackpropData", "GroupConvolutionBackpropData"),
    "Gemm": ("MatMul",),
    "MatMul": ("MatMul",),
    "Mul": ("Multiply",),
    "Sub": ("Subtract",),
    "Div": ("Divide",),
    "AveragePool": ("AvgPool",),
    "GlobalAveragePool": ("ReduceMean",),
    "GlobalMaxPool": ("ReduceMax",),
    "ReduceMean": ("ReduceMean",),
    "LayerNormalization": ("MVN",),
    "Gather": ("Gather",),
    "Softmax": ("Softmax",),
    "Resize": ("Interpolate",),
}


def _is_transformer(onnx_path: Path) -> bool:
    """Attention graphs (MatMul + Softmax, no convolutions) quantize best in NNCF's
    transformer mode (it keeps LayerNorm/Softmax inputs and the like in float)."""
    ops = {n.op_type for n in load_onnx(onnx_path, load_weights=False).graph.node}
    return "Softmax" in ops and ("MatMul" in ops or "Gemm" in ops) and "Conv" not in ops


def ignored_scope(
    model: Any,
    *,
    names: Sequence[str] = (),
    op_types: Sequence[str] = (),
    patterns: Sequence[str] = (),
) -> Any | None:
    """An `nncf.IgnoredScope` for the OpenVINO `model` from exclusions written against the
    ONNX graph: node names (OpenVINO splits a node into ops named `<name>` and `<name>/...`,
    all are excluded), ONNX op types (mapped to OpenVINO types) and regexes on node names.
    Returns None when nothing is excluded."""
    if not (names or op_types or patterns):
        return None
    nncf = require("nncf", "openvino", "NNCF quantization")
    op_names = [op.get_friendly_name() for op in model.get_ordered_ops()]
    matched: list[str] = []
    for name in names:
        hits = [n for n in op_names if n == name or n.startswith(name + "/")]
        if not hits:
            log.warning("NNCF exclusion: no OpenVINO op comes from ONNX node '%s'", name)
        matched.extend(hits)
    types: list[str] = []
    for op_type in op_types:
        types.extend(ONNX_TO_OPENVINO_TYPES.get(op_type, (op_type,)))
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise BackendError(f"Bad exclusion regex '{pattern}': {exc}") from exc
    return nncf.IgnoredScope(
        names=sorted(set(matched)),
        types=sorted(set(types)),
        patterns=list(patterns),
        validate=False,
    )


def quantize_onnx_with_nncf(
    onnx_path: Path | str,
    data: DataSource,
    *,
    options: OpenVinoOptions | None = None,
    exclude_names: Sequence[str] = (),
    exclude_op_types: Sequence[str] = (),
    exclude_patterns: Sequence[str] = (),
) -> Any:
    """Convert the float ONNX to an OpenVINO model and quantize it to INT8 with NNCF.

    Uses the first `options.nncf_subset_size` samples of `data` (default 300), one per
    calibration step; model type "auto" picks NNCF's transformer mode for attention graphs;
    preset "auto" leaves NNCF's default (performance, or mixed in transformer mode).
    Returns the quantized `openvino.Model` (not saved).
    """
    ov = require("openvino", "openvino", "the OpenVINO backend")
    nncf = require("nncf", "openvino", "NNCF quantization")
    options = options or OpenVinoOptions()
    onnx_path = Path(onnx_path)
    if data.num_samples < 1:
        raise DataError(f"Calibration data {data.describe()} is empty")
    try:
        model = ov.convert_model(str(onnx_path))
    except Exception as exc:  # OpenVINO raises its own exception types for unsupported ops
        raise BackendError(f"OpenVINO could not convert '{onnx_path}': {exc}") from exc
    model_inputs = {p.get_any_name() for p in model.inputs}
    missing = model_inputs - set(data.input_names)
    if missing:
        raise DataError(
            f"Calibration data {data.describe()} lacks input(s) {sorted(missing)} of "
            f"'{onnx_path}' (it has {data.input_names})"
        )
    model_type = options.nncf_model_type
    if model_type == "auto":
        model_type = "transformer" if _is_transformer(onnx_path) else "cnn"
    preset = {
        "auto": None,
        "performance": nncf.QuantizationPreset.PERFORMANCE,
        "mixed": nncf.QuantizationPreset.MIXED,
    }[options.nncf_preset]
    subset = min(options.nncf_subset_size, data.num_samples)
    dataset = nncf.Dataset(
        list(itertools.islice(data.iter_batches(1), subset)),
        lambda item: {k: v for k, v in item.inputs.items() if k in model_inputs},
    )
    log.info("NNCF: quantizing %s (%s mode, %d samples)", onnx_path.name, model_type, subset)
    try:
        return nncf.quantize(
            model,
            dataset,
            preset=preset,
            subset_size=subset,
            fast_bias_correction=options.nncf_fast_bias_correction,
            model_type=nncf.ModelType.TRANSFORMER if model_type == "transformer" else None,
            ignored_scope=ignored_scope(
                model, names=exclude_names, op_types=exclude_op_types, patterns=exclude_patterns
            ),
        )
    except Exception as exc:  # NNCF errors are many types; report them as a backend error
        raise BackendError(f"NNCF could not quantize '{onnx_path}': {exc}") from exc
