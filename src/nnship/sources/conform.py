"""Fitting data to a model's input specs: the batch axis, the two friendly dtype casts, checks.

Casting rules (documented in docs/sources.md):
- float64 -> float32 always (numpy's default float; the values are rounded, as torch would);
- integer -> integer (int32 <-> int64, uint8 -> int64, ...) only when every value fits the
  target type exactly, else an error naming the tensor and the value range;
- anything else (float -> int, int -> float, float32 -> float16, ...) is an error.
An array with one axis fewer than the spec, whose dims fit the spec's non-batch dims, is one
sample and gets a batch axis. The batch axis (axis 0) of a spec accepts any size: specs
parsed from `--input x:1x3x224x224` carry the example batch size, which data need not match.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nnship.core import Batch, TensorSpec, check_batch, check_input_names
from nnship.core.errors import DataError


def relax_batch_axis(spec: TensorSpec) -> TensorSpec:
    """`spec` with axis 0 symbolic ("batch"), so data of any sample count fits."""
    if not spec.shape:
        return spec
    return TensorSpec(spec.name, ("batch", *spec.shape[1:]), spec.dtype)


def _dims_fit(shape: Sequence[int], dims: Sequence[int | str]) -> bool:
    return len(shape) == len(dims) and all(
        not isinstance(want, int) or want <= 0 or want == got for want, got in zip(dims, shape)
    )


def is_single_sample(shape: Sequence[int], spec: TensorSpec) -> bool:
    """True if an array of `shape` is one sample of `spec` (the batch axis left out)."""
    return len(spec.shape) >= 1 and _dims_fit(shape, spec.shape[1:])


def castable(src: np.dtype | str, dst: np.dtype | str) -> bool:
    """True if `conform_array` may cast `src` to `dst` (ints still need their values to fit)."""
    src, dst = np.dtype(src), np.dtype(dst)
    if src == dst:
        return True
    if src == np.float64 and dst == np.float32:
        return True
    return src.kind in "iu" and dst.kind in "iu"


def conform_array(array: np.ndarray, spec: TensorSpec, *, where: str = "") -> np.ndarray:
    """Add a missing batch axis and apply the friendly casts; other mismatches are left for
    `TensorSpec.check` to report."""
    array = np.asarray(array)
    if array.ndim == len(spec.shape) - 1 and is_single_sample(array.shape, spec):
        array = array[None]
    want = np.dtype(spec.dtype)
    if array.dtype == want or not castable(array.dtype, want):
        return array
    if want.kind in "iu" and array.size:
        info = np.iinfo(want)
        low, high = int(array.min()), int(array.max())
        if low < info.min or high > info.max:
            at = f" in {where}" if where else ""
            raise DataError(
                f"Input '{spec.name}'{at}: values {low}..{high} ({array.dtype.name}) do not fit "
                f"the model's {want.name}"
            )
    return array.astype(want)


def conform_batch(batch: Batch, specs: Sequence[TensorSpec], *, where: str = "") -> Batch:
    """Conform every array of `batch` to its spec, then check names, ranks, fixed dims, dtypes
    and finiteness (`nnship.core.check_batch`, batch axis relaxed). Raises `DataError`."""
    by_name = {s.name: s for s in specs}
    out = {
        name: conform_array(value, by_name[name], where=where) if name in by_name else value
        for name, value in batch.items()
    }
    check_batch([relax_batch_axis(s) for s in specs], out, where=where)
    return out


def check_names(specs: Sequence[TensorSpec], names: Sequence[str], *, where: str) -> None:
    """Raise `DataError` unless `names` are exactly the spec names (any order)."""
    check_input_names(specs, names, where=where)


def check_header(spec: TensorSpec, shape: Sequence[int], dtype: np.dtype, *, where: str) -> int:
    """Check an array known only by its shape and dtype (a file header) against `spec`.

    Returns its number of samples. Reads no data: the check runs on a zero-copy broadcast.
    """
    single = len(shape) == len(spec.shape) - 1 and is_single_sample(shape, spec)
    full = (1, *shape) if single else tuple(shape)
    effective = np.dtype(spec.dtype) if castable(dtype, spec.dtype) else np.dtype(dtype)
    relax_batch_axis(spec).check(np.broadcast_to(np.zeros((), effective), full), where=where)
    return int(full[0]) if full else 0
