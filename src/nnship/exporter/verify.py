"""Numerical verification of an exported ONNX model against torch.

Contract: `verify_onnx` runs the ONNX model with ONNX Runtime on each sample batch and
compares every output with the reference (torch) outputs; it returns the errors when all are
within `atol + rtol * |reference|`, and otherwise raises `ExportError` naming the output, the
max abs error and the tolerance. It never modifies the model.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from nnship.core import Batch, Runner
from nnship.core.errors import ExportError
from nnship.exporter.config import DEFAULT_ATOL, DEFAULT_RTOL

log = logging.getLogger(__name__)

Outputs = dict[str, np.ndarray]


@dataclass
class VerificationResult:
    """Largest absolute error per output over all samples, and what was compared."""

    max_abs_error: float
    per_output: dict[str, float] = field(default_factory=dict)
    samples: int = 0
    batch_size: int = 0


def verification_samples(
    examples: Batch, *, count: int = 2, batch_size: int | None = None, seed: int = 0
) -> list[Batch]:
    """`count` input batches to verify on: the example inputs first, then seeded random
    batches resembling them. With `batch_size`, every batch has that many samples (example
    rows are repeated cyclically).

    Hand-written because no library makes "more inputs like this example": floats are drawn
    from a normal with the example's mean and std; integers and bools are drawn from the
    values the example holds, so token ids stay inside the vocabulary and all-ones attention
    masks stay all ones.
    """
    rng = np.random.default_rng(seed)
    first: Batch = {}
    for name, array in examples.items():
        array = np.asarray(array)
        if batch_size is not None and array.ndim and array.shape[0] != batch_size:
            rows = np.arange(batch_size) % max(array.shape[0], 1)
            array = array[rows]
        first[name] = np.ascontiguousarray(array)
    samples = [first]
    for _ in range(1, count):
        batch: Batch = {}
        for name, array in first.items():
            if array.dtype.kind == "f":
                std = float(array.std()) or 1.0
                values = rng.standard_normal(array.shape) * std + float(array.mean())
                batch[name] = values.astype(array.dtype)
            else:
                batch[name] = rng.choice(np.unique(array), size=array.shape).astype(array.dtype)
        samples.append(batch)
    return samples


def compare_outputs(
    expected: Outputs,
    actual: Outputs,
    *,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    where: str = "",
) -> dict[str, float]:
    """Max abs error per output; raise `ExportError` naming the first output outside
    `atol + rtol * |expected|`, or whose shape differs. Outputs are matched by name, or by
    position when the names differ but the counts agree."""
    at = f" {where}" if where else ""
    pairs = _match(expected, actual)
    errors: dict[str, float] = {}
    for name, (want, got) in pairs.items():
        want, got = np.asarray(want), np.asarray(got)
        if want.shape != got.shape:
            raise ExportError(
                f"ONNX output '{name}' has shape {tuple(got.shape)} but torch gives "
                f"{tuple(want.shape)}{at}"
            )
        w, g = want.astype(np.float64), got.astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            diff = np.where(w == g, 0.0, np.abs(w - g))  # equal infinities count as equal
        nan_w, nan_g = np.isnan(w), np.isnan(g)
        diff[nan_w & nan_g] = 0.0
        diff[nan_w ^ nan_g] = np.inf  # NaN on one side only is always a mismatch
        bad = diff > atol + rtol * np.abs(np.nan_to_num(w))
        errors[name] = float(diff.max()) if diff.size else 0.0
        if bad.any():
            idx = tuple(
                int(i) for i in np.unravel_index(int(np.argmax(np.where(bad, diff, -1))), bad.shape)
            )
            raise ExportError(
                f"ONNX output '{name}' disagrees with torch{at}: max abs error "
                f"{errors[name]:.3g} exceeds the tolerance atol={atol:g} + rtol={rtol:g}*|torch| "
                f"at {int(bad.sum())} of {bad.size} values (worst at index {idx}: torch "
                f"{w[idx]:.6g}, onnx {g[idx]:.6g}). If this drift is expected, raise "
                "[export] atol/rtol; otherwise an op was exported differently"
            )
    return errors


def _match(expected: Outputs, actual: Outputs) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    if set(expected) == set(actual):
        return {name: (expected[name], actual[name]) for name in expected}
    if len(expected) == len(actual):
        log.debug(
            "output names differ (%s vs %s): matching by position", list(expected), list(actual)
        )
        return {name: (want, got) for (name, want), got in zip(expected.items(), actual.values())}
    raise ExportError(
        f"The ONNX model has {len(actual)} outputs {list(actual)} but torch gives "
        f"{len(expected)} {list(expected)}"
    )


def verify_onnx(
    onnx_model: onnx.ModelProto | Path | str,
    reference: Runner | Sequence[Outputs],
    samples: Sequence[Batch],
    *,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
) -> VerificationResult:
    """Run `onnx_model` with ONNX Runtime (CPU, one thread, all graph optimizations) on every
    sample and compare with `reference`: a Runner (e.g. `TorchRunner`) run on the same
    samples, or its precomputed outputs, one dict per sample.

    Returns a `VerificationResult`; raises `ExportError` naming the output, the max abs error
    and the tolerance on the first mismatch.
    """
    from nnship.backends.onnxruntime import OnnxRuntimeRunner
    from nnship.core.errors import BackendError

    if not samples:
        raise ExportError("verify_onnx needs at least one sample batch")
    try:
        runner = OnnxRuntimeRunner(onnx_model, threads=1)
    except BackendError as exc:
        raise ExportError(f"The exported ONNX model cannot be verified: {exc}") from exc
    per_output: dict[str, float] = {}
    with runner:
        for i, sample in enumerate(samples):
            expected = reference.run(sample) if isinstance(reference, Runner) else reference[i]
            try:
                actual = runner.run(sample)
            except BackendError as exc:
                raise ExportError(
                    f"The exported ONNX model fails on verification sample {i}: {exc}"
                ) from exc
            batch = _batch_size(sample)
            errors = compare_outputs(
                expected,
                actual,
                rtol=rtol,
                atol=atol,
                where=f"on verification sample {i} (batch size {batch})",
            )
            for name, err in errors.items():
                per_output[name] = max(per_output.get(name, 0.0), err)
    return VerificationResult(
        max_abs_error=max(per_output.values(), default=0.0),
        per_output=per_output,
        samples=len(samples),
        batch_size=_batch_size(samples[0]),
    )


def _batch_size(batch: Batch) -> int:
    first = next(iter(batch.values()), None)
    return int(first.shape[0]) if first is not None and np.ndim(first) else 1
