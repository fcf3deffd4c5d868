"""Opset conversion of foreign ONNX before quantization.

Per-channel Q/DQ needs `DequantizeLinear(axis=...)`, which exists from opset 13; an opset-11
graph from another exporter would get the attribute anyway and no runtime would load it
("Unrecognized attribute: axis for operator DequantizeLinear"). So models below
`MIN_QDQ_OPSET` are converted with `onnx.version_converter` to `TARGET_OPSET` (the exporter's
default, the opset nnship's own models and tests run at) BEFORE any statistics or Q/DQ, and
the conversion is verified: both graphs run in ONNX Runtime on the caller's samples and their
outputs must agree.

Contract of `upgrade_opset`: requires a loadable float ONNX; guarantees a model whose default
domain is at `TARGET_OPSET` (or the original when it is already >= `MIN_QDQ_OPSET`) whose
outputs match the original's on the given samples within `ATOL + RTOL * |reference|`; never
modifies its input. Other domains (ai.onnx.ml, com.microsoft, ...) keep their versions: the
converter only rewrites the default domain, and their operators do not change with it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import onnx

from nnship.core import DataSource
from nnship.core.errors import QuantizationError

log = logging.getLogger(__name__)

MIN_QDQ_OPSET = 13
"""Lowest default-domain opset with per-axis QuantizeLinear/DequantizeLinear."""
TARGET_OPSET = 18
"""Where older graphs are converted to: `nnship.exporter.config.DEFAULT_OPSET`, run by ONNX
Runtime, OpenVINO and TensorRT 10 (the converter reaches 21 too, but nothing nnship writes
needs it)."""
VERIFY_SAMPLES = 4
"""Samples both graphs run on to prove the conversion changed no output."""
ATOL = 1e-5
RTOL = 1e-4
"""A converted graph computes the same operators; differences beyond float reassociation are a
converter bug, and quantization then stops with an error."""


@dataclass
class OpsetConversion:
    """What `upgrade_opset` did: JSON-ready via `to_dict()`."""

    from_opset: int
    to_opset: int
    converted: bool
    other_domains: dict[str, int] = field(default_factory=dict)
    verified_samples: int = 0
    max_abs_diff: float | None = None
    identical: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        if not self.converted:
            return f"opset {self.from_opset}: no conversion needed"
        check = (
            "not verified (no data)"
            if self.max_abs_diff is None
            else f"outputs {'bit-identical' if self.identical else 'within tolerance'} on "
            f"{self.verified_samples} samples (max abs diff {self.max_abs_diff:.3g})"
        )
        return f"opset {self.from_opset} -> {self.to_opset} (onnx.version_converter); {check}"


def default_opset(model: onnx.ModelProto) -> int:
    """The version of the default ("" or "ai.onnx") domain; 1 when the model declares none."""
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return 1


def upgrade_opset(
    model: onnx.ModelProto,
    *,
    data: DataSource | None = None,
    target: int = TARGET_OPSET,
    minimum: int = MIN_QDQ_OPSET,
    name: str = "model",
) -> tuple[onnx.ModelProto, OpsetConversion]:
    """Return (`model` at opset >= `minimum`, what was done). Converts to `target` when below
    `minimum`; `data` (up to `VERIFY_SAMPLES` samples) proves the outputs did not change.

    Raises `QuantizationError` naming `name` when the converter fails or the outputs differ.
    """
    source = default_opset(model)
    others = {
        e.domain: int(e.version) for e in model.opset_import if e.domain not in ("", "ai.onnx")
    }
    record = OpsetConversion(source, source, False, others)
    if source >= minimum:
        return model, record
    from onnx import version_converter

    try:
        converted = version_converter.convert_version(model, target)
        onnx.checker.check_model(converted)
    except Exception as exc:  # the converter raises RuntimeError/ValidationError per adapter
        raise QuantizationError(
            f"'{name}' is at opset {source}; per-channel Q/DQ needs opset >= {minimum} and "
            f"onnx.version_converter could not convert it to {target} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); convert it with your exporter "
            "(export at opset >= 13), or use per_channel = false"
        ) from exc
    record.to_opset, record.converted = target, True
    if data is not None:
        _verify(model, converted, data, record, name)
    log.info("%s: %s", name, record.describe())
    return converted, record


def _verify(
    original: onnx.ModelProto,
    converted: onnx.ModelProto,
    data: DataSource,
    record: OpsetConversion,
    name: str,
) -> None:
    from nnship.backends.onnxruntime.outputs import run_model

    before = run_model(original, data, max_samples=VERIFY_SAMPLES)
    after = run_model(converted, data, max_samples=VERIFY_SAMPLES)
    worst, identical, bad = 0.0, True, []
    for out, ref in before.arrays.items():
        got = after.arrays.get(out)
        if got is None or got.shape != ref.shape:
            bad.append(f"output '{out}' changed shape")
            continue
        ref64, got64 = ref.astype(np.float64), got.astype(np.float64)
        diff = float(np.max(np.abs(ref64 - got64))) if ref.size else 0.0
        worst = max(worst, diff)
        identical = identical and np.array_equal(ref, got)
        if not np.all(np.abs(ref64 - got64) <= ATOL + RTOL * np.abs(ref64)):
            bad.append(f"output '{out}' max abs diff {diff:.3g}")
    record.verified_samples = len(next(iter(before.arrays.values()), []))
    record.max_abs_diff, record.identical = worst, identical
    if bad:
        raise QuantizationError(
            f"'{name}': converting opset {record.from_opset} -> {record.to_opset} changed the "
            f"model's outputs ({'; '.join(bad)}); this is an onnx.version_converter defect for "
            "one of its operators: re-export the model at opset >= 13"
        )
