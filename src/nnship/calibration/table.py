"""`CalibrationTable`: per-tensor statistics collected once, reused by every method and backend.

JSON is the stored form (`save`/`load`); TensorRT's calibration-cache text format is one more
writer (`write_tensorrt_cache`).
"""

from __future__ import annotations

import json
import logging
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnship.calibration.methods import TensorRange, check_method, compute_range
from nnship.calibration.tensor_statistics import TensorStatistics
from nnship.core.errors import CalibrationError
from nnship.core.fileio import write_json_atomic, write_text_atomic

log = logging.getLogger(__name__)

SCHEMA = "nnship.calibration-table/1"
"""Schema id written to and required from table files."""

EXTREME_ABS = 1e4
"""|x| at or above which a tensor's range counts as extreme (kept in float by default)."""

DEFAULT_TRT_VERSION = "100300"
"""Version field of the TensorRT cache header ("TRT-100300-EntropyCalibration2" = 10.3.0)."""


def degenerate_reason(stats: TensorStatistics, extreme: float = EXTREME_ABS) -> str | None:
    """Why `stats` must not be quantized blindly, or None when its range is usable."""
    if stats.count == 0:
        if stats.num_nonfinite:
            return f"holds only NaN/Inf values ({stats.num_nonfinite})"
        return "no values were seen on the calibration data"
    if stats.num_nonfinite:
        return (
            f"holds {stats.num_nonfinite} NaN/Inf value(s) out of "
            f"{stats.count + stats.num_nonfinite}"
        )
    assert stats.min is not None and stats.max is not None
    amax = max(abs(stats.min), abs(stats.max))
    if amax >= extreme:
        kind = (
            "float32-min-like values (e.g. an attention-mask bias)"
            if amax >= 1e30
            else f"|x| >= {extreme:g}"
        )
        return (
            f"extreme range [{stats.min:.4g}, {stats.max:.4g}]: {kind}; an int8 step of "
            f"{amax / 127:.3g} would erase every ordinary value"
        )
    if stats.min == stats.max:
        return f"constant tensor (every value is {stats.min:.6g}): zero range"
    return None


@dataclass
class CalibrationTable:
    """Per-tensor statistics of one model over one calibration set.

    `model_sha256` and `data_fingerprint` identify the inputs; `skipped` maps tensors that were
    not collected to the reason; `stored_ranges` holds the ranges saved by `nnship calibrate`
    (method, params, per-tensor values), if any.
    """

    tensors: dict[str, TensorStatistics]
    model_sha256: str
    data_fingerprint: str
    num_samples: int
    num_bins: int
    skipped: dict[str, str] = field(default_factory=dict)
    stored_ranges: dict[str, Any] | None = None

    def __contains__(self, name: object) -> bool:
        return name in self.tensors

    def __getitem__(self, name: str) -> TensorStatistics:
        try:
            return self.tensors[name]
        except KeyError:
            raise CalibrationError(f"Tensor '{name}' has no statistics in this table") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.tensors)

    def __len__(self) -> int:
        return len(self.tensors)

    def degenerate_tensors(self, *, extreme: float = EXTREME_ABS) -> dict[str, str]:
        """Tensors that must stay in float -> reason: NaN/Inf seen, no values, |x| >=
        `extreme` (defaults to 1e4; float32-min attention-mask biases are named as such), or
        a constant (zero-range) tensor."""
        out = {}
        for name, stats in self.tensors.items():
            reason = degenerate_reason(stats, extreme)
            if reason:
                out[name] = reason
        return out

    def ranges(
        self,
        method: str = "minmax",
        *,
        percentile: float = 99.99,
        symmetric: bool | None = None,
        num_bits: int = 8,
        include_degenerate: bool = False,
        extreme: float = EXTREME_ABS,
        entropy_guard: bool = True,
    ) -> dict[str, TensorRange]:
        """Range of every tensor by `method` ("minmax", "percentile", "entropy" or "mse").

        `percentile` defaults to 99.99 (percent). `symmetric`: see `nnship.calibration.methods`.
        `entropy_guard` (default True): see `compute_range`.
        Degenerate tensors (see `degenerate_tensors`) are left out unless `include_degenerate`
        (tensors without finite values are always left out): a quantizer keeps them in float.
        Each `TensorRange.method` names the method really applied.
        """
        method = check_method(method)
        skip = {} if include_degenerate else self.degenerate_tensors(extreme=extreme)
        out: dict[str, TensorRange] = {}
        for name, stats in self.tensors.items():
            if name in skip or stats.min is None:
                continue
            out[name] = compute_range(
                stats,
                method,
                percentile=percentile,
                symmetric=symmetric,
                num_bits=num_bits,
                entropy_guard=entropy_guard,
            )
        fallbacks = [n for n, r in out.items() if r.method != method]
        if fallbacks:
            log.warning(
                "%s was not applicable to %d tensor(s) (e.g. '%s': %s)",
                method,
                len(fallbacks),
                fallbacks[0],
                out[fallbacks[0]].method,
            )
        return out

    def write_tensorrt_cache(
        self,
        path: Path | str,
        ranges: dict[str, TensorRange] | dict[str, tuple[float, float]],
        *,
        trt_version: str = DEFAULT_TRT_VERSION,
    ) -> Path:
        """Write `ranges` as a TensorRT calibration cache (see `write_tensorrt_cache`)."""
        return write_tensorrt_cache(path, ranges, trt_version=trt_version)

    # -- serialisation ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "model_sha256": self.model_sha256,
            "data_fingerprint": self.data_fingerprint,
            "num_samples": int(self.num_samples),
            "num_bins": int(self.num_bins),
            "skipped": dict(self.skipped),
            "tensors": {name: s.to_dict() for name, s in self.tensors.items()},
            "ranges": self.stored_ranges,
        }

    def save(self, path: Path | str) -> Path:
        """Write the table as JSON, atomically."""
        return write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: Path | str) -> CalibrationTable:
        """Read a table written by `save`; `CalibrationError` names the file if it is missing,
        corrupt, or of another schema version."""
        path = Path(path)
        if not path.is_file():
            raise CalibrationError(f"Calibration table '{path}' does not exist")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CalibrationError(
                f"Calibration table '{path}' is corrupt (not valid JSON: {exc}); "
                "re-run `nnship calibrate`"
            ) from exc
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            found = data.get("schema") if isinstance(data, dict) else type(data).__name__
            raise CalibrationError(
                f"Calibration table '{path}' has schema {found!r}, expected '{SCHEMA}' "
                "(written by another nnship version or not a calibration table); "
                "re-run `nnship calibrate`"
            )
        try:
            tensors = {
                name: TensorStatistics.from_dict(name, entry)
                for name, entry in data["tensors"].items()
            }
            return cls(
                tensors=tensors,
                model_sha256=str(data["model_sha256"]),
                data_fingerprint=str(data["data_fingerprint"]),
                num_samples=int(data["num_samples"]),
                num_bins=int(data["num_bins"]),
                skipped=dict(data.get("skipped") or {}),
                stored_ranges=data.get("ranges"),
            )
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise CalibrationError(
                f"Calibration table '{path}' is corrupt (bad or missing field: {exc!r}); "
                "re-run `nnship calibrate`"
            ) from exc


def write_tensorrt_cache(
    path: Path | str,
    ranges: dict[str, TensorRange] | dict[str, tuple[float, float]],
    *,
    trt_version: str = DEFAULT_TRT_VERSION,
) -> Path:
    """Write a TensorRT calibration cache (the text `IInt8Calibrator.writeCalibrationCache`
    produces, read back by `trtexec --calib=...` or a calibrator's `readCalibrationCache`).

    Format: a header line `TRT-<version>-EntropyCalibration2`, then one line per tensor
    `<name>: <hex>` where `<hex>` is the 8-digit big-endian IEEE-754 float32 of the scale
    `amax / 127` (TensorRT int8 is symmetric, so only `amax = max(|lo|, |hi|)` matters).
    `trt_version` defaults to "100300" (TensorRT 10.3); TensorRT matches on the algorithm
    name. Tensor names are the ONNX tensor names, which TensorRT's ONNX parser keeps.
    """
    lines = [f"TRT-{trt_version}-EntropyCalibration2"]
    for name in sorted(ranges):
        lo, hi = ranges[name]
        amax = max(abs(float(lo)), abs(float(hi)))
        if not math.isfinite(amax):
            raise CalibrationError(f"Tensor '{name}' has a non-finite range; cannot cache it")
        if any(ch in name for ch in "\n\r"):
            raise CalibrationError(f"Tensor name {name!r} holds a line break")
        lines.append(f"{name}: {struct.pack('>f', amax / 127.0).hex()}")
    return write_text_atomic(path, "\n".join(lines) + "\n")


def read_tensorrt_cache(path: Path | str) -> dict[str, float]:
    """Scales by tensor name from a TensorRT calibration cache (the inverse of
    `write_tensorrt_cache`); `CalibrationError` names the file and line when malformed."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"TensorRT calibration cache '{path}' does not exist")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    if not lines or not lines[0].startswith("TRT-"):
        raise CalibrationError(f"'{path}' is not a TensorRT calibration cache (no TRT- header)")
    scales: dict[str, float] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        name, sep, value = line.rpartition(": ")
        try:
            if not sep:
                raise ValueError("no ': ' separator")
            scales[name] = struct.unpack(">f", bytes.fromhex(value.strip().rjust(8, "0")))[0]
        except (ValueError, struct.error) as exc:
            raise CalibrationError(f"'{path}' line {number} is malformed: {line!r}") from exc
    return scales
