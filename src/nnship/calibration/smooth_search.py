"""SmoothQuant with a migration strength chosen per layer on calibration data.

One global `alpha` (Xiao et al. 2022 use 0.5 for most models, NNCF 0.95 for MatMuls) is a
compromise: on a real BERT encoder the GELU outputs that feed the second FFN MatMul carry a
single channel 15x above the others and want most of the difficulty moved into the weights,
while the LayerNorm outputs want less. So for every smoothable activation X (the input of
MatMul/Gemm nodes with constant weights, see `smooth.smoothing_groups`) this pass simulates the
INT8 layer on captured calibration rows, for "no smoothing" and for each alpha of a grid:

    Y = X W,   Y_hat = FQ_act(X / s) FQ_w(diag(s) W),   error = mean (Y - Y_hat)^2

with `s` from `smooth.smoothing_scales` (eq. 4 of the paper), FQ_act per-tensor (uint8
asymmetric, or int8 symmetric for profiles that need it) over the range of the captured rows,
FQ_w int8 symmetric per output column, as the Q/DQ writer quantizes them. The choice with the
lowest error wins; "no smoothing" wins ties, so a layer without outliers is left alone. This is
the layer-wise output-MSE criterion of SmoothQuant's own alpha sweep (section 5.4), applied per
layer instead of per model.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx

from nnship.calibration.smooth import (
    SmoothReport,
    group_weights,
    smooth_activations,
    smoothing_groups,
    smoothing_scales,
)
from nnship.calibration.table import CalibrationTable
from nnship.core import DataSource
from nnship.core.errors import CalibrationError

log = logging.getLogger(__name__)

ALPHA_GRID: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)
"""Migration strengths the per-layer search tries (besides no smoothing)."""


def fake_quant_activation(x: np.ndarray, *, symmetric: bool) -> np.ndarray:
    """Per-tensor INT8 round trip over x's own range: uint8 asymmetric with the range widened
    to hold 0 (as ONNX Runtime's quantizer computes it), or int8 symmetric."""
    lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    if symmetric:
        scale = max(abs(lo), abs(hi)) / 127.0 or 1.0
        return np.clip(np.round(x / scale), -127, 127) * scale
    scale = (hi - lo) / 255.0 or 1.0
    zero = np.round(-lo / scale)
    return (np.clip(np.round(x / scale) + zero, 0, 255) - zero) * scale


def fake_quant_weight(w: np.ndarray) -> np.ndarray:
    """INT8 symmetric per output column (axis 1 of a `[K, N]` weight) round trip."""
    scale = np.abs(w).max(axis=0, keepdims=True) / 127.0
    scale = np.where(scale == 0, 1.0, scale)
    return np.clip(np.round(w / scale), -127, 127) * scale


def layer_error(
    x: np.ndarray, weights: list[np.ndarray], s: np.ndarray | None, *, symmetric: bool
) -> float:
    """Mean squared error of the simulated INT8 outputs of every weight reading `x` (rows x K),
    after smoothing by `s` (None: not smoothed)."""
    w = np.concatenate(weights, axis=1)
    reference = x @ w
    if s is not None:
        x, w = x / s, w * s[:, None]
    got = fake_quant_activation(x, symmetric=symmetric) @ fake_quant_weight(w)
    return float(np.mean((reference - got) ** 2))


def capture_rows(
    model: onnx.ModelProto,
    data: DataSource,
    tensors: Sequence[str],
    *,
    max_samples: int = 32,
    max_rows: int = 1024,
    batch_size: int = 8,
) -> dict[str, np.ndarray]:
    """Rows (flattened over every axis but the last) of `tensors` over the first
    `max_samples` samples of `data`, at most `max_rows` per tensor, evenly spaced so the
    choice is deterministic."""
    from nnship.backends.onnxruntime.outputs import iter_checked, make_session
    from nnship.onnx.graph import add_outputs

    names = list(tensors)
    session = make_session(add_outputs(model, names))
    chunks: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for inputs, _ in iter_checked(model, data, max_samples=max_samples, batch_size=batch_size):
        for name, value in zip(names, session.run(names, inputs)):
            value = np.asarray(value, dtype=np.float32)
            chunks[name].append(value.reshape(-1, value.shape[-1]))
    rows = {}
    for name, parts in chunks.items():
        if not parts:
            raise CalibrationError(f"no calibration samples to capture tensor '{name}' on")
        full = np.concatenate(parts)
        pick = np.linspace(0, len(full) - 1, min(max_rows, len(full))).round().astype(int)
        rows[name] = full[np.unique(pick)]
    return rows


def choose_alphas(
    model: onnx.ModelProto,
    table: CalibrationTable,
    rows: dict[str, np.ndarray],
    *,
    grid: Sequence[float] = ALPHA_GRID,
    symmetric: bool = False,
) -> tuple[dict[str, float | None], list[dict[str, Any]]]:
    """Per activation tensor, the alpha of `grid` (or None: no smoothing) whose simulated INT8
    layer output error on `rows` is lowest; plus one record per tensor (errors per choice)."""
    chosen: dict[str, float | None] = {}
    records: list[dict[str, Any]] = []
    for tensor, nodes in smoothing_groups(model).items():
        if tensor not in rows or tensor not in table:
            continue
        channel = table[tensor].channel_abs_max
        weights = group_weights(model, nodes)
        if channel is None or weights is None or weights[0].shape[0] != channel.shape[0]:
            continue
        x = rows[tensor].astype(np.float64)
        ws = [w.astype(np.float64) for w in weights]
        plain = layer_error(x, ws, None, symmetric=symmetric)
        errors = {
            float(a): layer_error(x, ws, smoothing_scales(channel, ws, a), symmetric=symmetric)
            for a in grid
        }
        best = min(errors, key=lambda a: (errors[a], a))
        pick = best if errors[best] < plain else None
        chosen[tensor] = pick
        records.append(
            {
                "tensor": tensor,
                "alpha": pick,
                "error_plain": plain,
                "error_chosen": errors[pick] if pick is not None else plain,
                "errors": {str(a): e for a, e in errors.items()},
            }
        )
    return chosen, records


def smooth_with_alpha_search(
    model: onnx.ModelProto,
    table: CalibrationTable,
    data: DataSource,
    *,
    grid: Sequence[float] = ALPHA_GRID,
    symmetric: bool = False,
    max_samples: int = 32,
    max_rows: int = 1024,
) -> tuple[onnx.ModelProto, SmoothReport]:
    """SmoothQuant with alpha chosen per layer (module docstring) on the first `max_samples`
    samples of `data` (default 32, at most `max_rows` rows per tensor, default 1024). Returns
    the smoothed model and its report (`report.search` holds the per-layer errors)."""
    if not grid or any(not 0.0 <= a <= 1.0 for a in grid):
        raise CalibrationError(f"SmoothQuant alpha grid must hold values in [0, 1], got {grid}")
    tensors = sorted(smoothing_groups(model))
    if not tensors:
        return smooth_activations(model, table, alphas={})
    rows = capture_rows(model, data, tensors, max_samples=max_samples, max_rows=max_rows)
    alphas, records = choose_alphas(model, table, rows, grid=grid, symmetric=symmetric)
    out, report = smooth_activations(model, table, alphas=alphas)
    report.search = records
    log.info(
        "per-layer SmoothQuant: %d of %d activations smoothed",
        sum(a is not None for a in alphas.values()),
        len(alphas),
    )
    return out, report


__all__ = [
    "ALPHA_GRID",
    "capture_rows",
    "choose_alphas",
    "layer_error",
    "smooth_with_alpha_search",
]
