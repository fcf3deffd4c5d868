"""Tensor specs and batches: the names, shapes and dtypes every stage checks its arrays against."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnship.core.errors import DataError

Dim = int | str
"""A dimension: a fixed size, or a symbolic name such as "batch" that accepts any size."""

Batch = dict[str, np.ndarray]
"""Named input (or output) arrays; the first axis is the batch axis."""

_DTYPE_ALIASES = {
    "float": "float32",
    "fp32": "float32",
    "f32": "float32",
    "half": "float16",
    "fp16": "float16",
    "f16": "float16",
    "double": "float64",
    "int": "int64",
    "long": "int64",
    "i64": "int64",
    "i32": "int32",
    "uint8": "uint8",
    "u8": "uint8",
    "bool": "bool",
}


def normalize_dtype(dtype: str | np.dtype | type) -> str:
    """Canonical numpy dtype name ("float32", "int64", ...) for user spellings and numpy dtypes."""
    if isinstance(dtype, str):
        dtype = _DTYPE_ALIASES.get(dtype.lower(), dtype.lower())
    try:
        return np.dtype(dtype).name
    except TypeError as exc:
        raise DataError(f"Unknown dtype '{dtype}'") from exc


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape and dtype of one model input or output. Symbolic dims are strings."""

    name: str
    shape: tuple[Dim, ...]
    dtype: str = "float32"

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(self.shape))
        object.__setattr__(self, "dtype", normalize_dtype(self.dtype))

    @property
    def is_static(self) -> bool:
        return all(isinstance(d, int) for d in self.shape)

    def concrete_shape(self, symbolic: int = 1) -> tuple[int, ...]:
        """The shape with every symbolic dim replaced by `symbolic`."""
        return tuple(d if isinstance(d, int) else symbolic for d in self.shape)

    def check(self, array: np.ndarray, *, where: str = "") -> None:
        """Raise `DataError` naming the tensor and both shapes if `array` does not fit this spec.

        Symbolic dims accept any size; a fixed dim of -1 or 0 (unknown) accepts any size too.
        """
        at = f" in {where}" if where else ""
        arr = np.asarray(array)
        if arr.ndim != len(self.shape):
            raise DataError(
                f"Input '{self.name}'{at}: expected rank {len(self.shape)} shape {self.shape_str()}, "
                f"got rank {arr.ndim} shape {tuple(arr.shape)}"
            )
        for axis, (want, got) in enumerate(zip(self.shape, arr.shape)):
            if isinstance(want, int) and want > 0 and want != got:
                raise DataError(
                    f"Input '{self.name}'{at}: expected shape {self.shape_str()}, got "
                    f"{tuple(arr.shape)} (axis {axis} is {got}, expected {want})"
                )
        if arr.dtype.name != self.dtype:
            raise DataError(
                f"Input '{self.name}'{at}: expected dtype {self.dtype}, got {arr.dtype.name}"
            )

    def shape_str(self) -> str:
        return "[" + ", ".join(str(d) for d in self.shape) + "]"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TensorSpec:
        return cls(data["name"], tuple(data["shape"]), data.get("dtype", "float32"))

    @classmethod
    def parse(cls, text: str) -> TensorSpec:
        """Parse the CLI form `NAME:SHAPE[:DTYPE]`, e.g. `x:1x3x224x224` or `ids:1x128:int64`.

        The shape is kept concrete (it is the example shape); exporters mark axis 0 dynamic.
        """
        parts = text.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
            raise DataError(
                f"Bad --input '{text}': expected NAME:SHAPE[:DTYPE], e.g. x:1x3x224x224 or "
                "input_ids:1x128:int64"
            )
        try:
            dims = [int(d) for d in parts[1].lower().split("x")]
        except ValueError as exc:
            raise DataError(
                f"Bad --input '{text}': shape '{parts[1]}' must be integers joined by 'x'"
            ) from exc
        if any(d <= 0 for d in dims):
            raise DataError(f"Bad --input '{text}': every dimension must be positive")
        dtype = parts[2] if len(parts) == 3 else "float32"
        return cls(parts[0], tuple(dims), dtype)

    def example(self, batch: int = 1, seed: int = 0) -> np.ndarray:
        """A deterministic example array: axis 0 has size `batch`, other symbolic dims 1.

        Floats are standard normal; integers are small non-negative ids (0..9); bools are True.
        """
        shape = self.concrete_shape()
        if shape:  # axis 0 is the batch axis, whatever the example shape says
            shape = (batch, *shape[1:])
        rng = np.random.default_rng(seed)
        kind = np.dtype(self.dtype).kind
        if kind == "f":
            return rng.standard_normal(shape).astype(self.dtype)
        if kind in "iu":
            return rng.integers(0, 10, size=shape).astype(self.dtype)
        if kind == "b":
            return np.ones(shape, dtype=bool)
        raise DataError(f"Input '{self.name}': cannot make example data of dtype {self.dtype}")


def runtime_spec(
    name: str, dims: Iterable[object], dtype: str, *, batch_name: str | None = None
) -> TensorSpec:
    """A `TensorSpec` from the shape a runtime reports for a model input or output: a
    non-negative int is a fixed size and a non-empty string a named symbolic dim; anything else
    (None, -1, "") is unknown and named `batch_name` on axis 0 when given, else
    `<tensor>_dim<axis>`. The one naming every runner uses, so specs compare across backends."""
    shape: list[Dim] = []
    for axis, dim in enumerate(dims):
        if isinstance(dim, int) and not isinstance(dim, bool) and dim >= 0:
            shape.append(dim)
        elif isinstance(dim, str) and dim:
            shape.append(dim)
        elif axis == 0 and batch_name:
            shape.append(batch_name)
        else:
            shape.append(f"{name}_dim{axis}")
    return TensorSpec(name, tuple(shape), dtype)


def example_batch(specs: Sequence[TensorSpec], batch: int = 1, seed: int = 0) -> Batch:
    """Deterministic example inputs for every spec (see `TensorSpec.example`).

    Integer inputs whose name mentions "mask" get all ones, so attention masks are valid.
    """
    out: Batch = {}
    for i, spec in enumerate(specs):
        arr = spec.example(batch, seed + i)
        if "mask" in spec.name.lower() and np.dtype(spec.dtype).kind in "iub":
            arr = np.ones_like(arr)
        out[spec.name] = arr
    return out


def check_batch(specs: Sequence[TensorSpec], batch: Batch, *, where: str = "") -> None:
    """Raise `DataError` unless `batch` has exactly the inputs in `specs`, each fitting its spec,
    with finite values."""
    check_input_names(specs, list(batch), where=where)
    for spec in specs:
        spec.check(batch[spec.name], where=where)
        check_finite(spec.name, batch[spec.name], where=where)


def check_input_names(
    specs: Sequence[TensorSpec], names: Sequence[str], *, where: str = ""
) -> None:
    """Raise `DataError` unless `names` are exactly the spec names (any order), listing the
    missing and unexpected ones."""
    at = f" in {where}" if where else ""
    want = [s.name for s in specs]
    missing = [n for n in want if n not in names]
    extra = [n for n in names if n not in want]
    if missing or extra:
        raise DataError(
            f"Inputs{at} do not match the model: model expects {want}, data has {list(names)}"
            + (f"; missing {missing}" if missing else "")
            + (f"; unexpected {extra}" if extra else "")
        )


def check_finite(name: str, array: np.ndarray, *, where: str = "") -> None:
    """Raise `DataError` naming the tensor if `array` holds NaN or Inf."""
    arr = np.asarray(array)
    if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
        bad = int(np.size(arr) - np.isfinite(arr).sum())
        at = f" in {where}" if where else ""
        raise DataError(f"Tensor '{name}'{at} holds {bad} NaN/Inf value(s); clean the data first")
