"""Getting activation ranges: from a `CalibrationTable`, or by collecting one with
`nnship.calibration.collect_statistics` over calibration data.

Any object with `ranges(method, *, percentile=..., symmetric=...)` and `degenerate_tensors()`
works as a table (tests use a small in-memory one).
"""

from __future__ import annotations

import logging
import math
import tempfile
from pathlib import Path
from typing import Any, Protocol

import onnx

from nnship.core import DataSource
from nnship.core.errors import CalibrationError, NnshipError, QuantizationError
from nnship.quantize.config import CalibrationSettings
from nnship.quantize.placement import GraphInfo
from nnship.quantize.profiles import QuantProfile

log = logging.getLogger(__name__)


class RangeTable(Protocol):
    def ranges(
        self, method: str = ..., *, percentile: float = ..., symmetric: bool | None = ...
    ) -> Any: ...

    def degenerate_tensors(self) -> Any: ...


def _pair(value: Any) -> tuple[float, float]:
    if hasattr(value, "lo") and hasattr(value, "hi"):
        return float(value.lo), float(value.hi)
    lo, hi = value
    return float(lo), float(hi)


def table_ranges(
    table: RangeTable,
    method: str,
    *,
    percentile: float,
    symmetric: bool,
    extreme: float,
    applied: dict[str, str] | None = None,
) -> dict[str, tuple[float, float]]:
    """{tensor: (lo, hi)} from `table` for `method`; NaN anywhere is a `CalibrationError`.
    Tensors whose |x| reaches `extreme` are left to `degenerate` to report. `applied`, when
    given, receives tensor -> the method really applied wherever that is not `method` (e.g.
    "mse (entropy rejected: ...)", from `TensorRange.method`)."""
    try:
        try:
            raw = table.ranges(method, percentile=percentile, symmetric=symmetric, extreme=extreme)
        except TypeError:  # a table without the `extreme` keyword
            raw = table.ranges(method, percentile=percentile, symmetric=symmetric)
    except (ValueError, KeyError, NnshipError) as exc:
        raise QuantizationError(f"Calibration table cannot give '{method}' ranges: {exc}") from exc
    out = {name: _pair(v) for name, v in dict(raw).items()}
    if applied is not None:
        for name, value in dict(raw).items():
            label = getattr(value, "method", method)
            if label != method:
                applied[name] = str(label)
    for name, (lo, hi) in out.items():
        if math.isnan(lo) or math.isnan(hi):
            raise CalibrationError(
                f"Calibration statistic of tensor '{name}' is NaN ({method} range); the data or "
                "the model produces NaN there"
            )
    return out


def degenerate(table: RangeTable, extreme: float | None = None) -> dict[str, str]:
    """Tensors the table says must stay float -> reason."""
    getter = getattr(table, "degenerate_tensors", None)
    if getter is None:
        return {}
    if extreme is not None:
        try:
            return dict(getter(extreme=extreme))
        except TypeError:  # a table without the `extreme` keyword
            pass
    return dict(getter())


def method_effect(
    table: RangeTable, ranges: dict[str, tuple[float, float]], method: str, tensors: set[str]
) -> int:
    """How many of `tensors` got a range different from minmax (0 means the method changed
    nothing, which the result must say rather than claim the method was applied)."""
    if method == "minmax":
        return 0
    try:
        minmax = {k: _pair(v) for k, v in dict(table.ranges("minmax")).items()}
    except Exception:  # a table without minmax cannot be compared: report no claim
        return -1
    changed = 0
    for t in tensors:
        if t in ranges and t in minmax:
            a, b = ranges[t], minmax[t]
            if not (
                math.isclose(a[0], b[0], rel_tol=1e-6) and math.isclose(a[1], b[1], rel_tol=1e-6)
            ):
                changed += 1
    return changed


def candidate_tensors(model: onnx.ModelProto, profile: QuantProfile) -> list[str]:
    """Activation tensors any quantization site of `profile` might need a range for."""
    info = GraphInfo(model)
    names: set[str] = set()
    for node in model.graph.node:
        if node.op_type in profile.op_types:
            names.update(i for i in node.input if info.is_activation(i))
            names.update(o for o in node.output if o and o not in info.non_float)
    return sorted(names)


def collect_table(
    model: onnx.ModelProto,
    data: DataSource,
    settings: CalibrationSettings,
    *,
    tensors: list[str] | None,
    warnings: list[str],
) -> Any:
    """Collect statistics on `model` with `nnship.calibration.collect_statistics`."""
    try:
        from nnship.calibration import collect_statistics
    except ImportError as exc:
        raise QuantizationError(
            "nnship.calibration.collect_statistics is not available; pass a calibration table"
        ) from exc
    usable = min(data.num_samples, settings.max_samples or data.num_samples)
    if usable < settings.min_samples:
        message = (
            f"only {usable} calibration sample(s) in {data.describe()} (fewer than "
            f"{settings.min_samples}); ranges may not represent real inputs"
        )
        log.warning(message)
        warnings.append(message)
    with tempfile.TemporaryDirectory(prefix="nnship-calib-") as tmp:
        path = Path(tmp) / "model.onnx"
        onnx.save_model(model, str(path))
        return collect_statistics(
            path,
            data,
            tensors=tensors,
            num_bins=settings.num_bins,
            batch_size=settings.batch_size,
            max_samples=settings.max_samples,
        )
