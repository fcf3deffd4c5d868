"""Range methods: turn one tensor's statistics into a quantization range `[lo, hi]`.

- `minmax`: the observed `[min, max]`.
- `percentile`: clip the tails holding `100 - percentile` % of the values.
- `entropy`: TensorRT's KL-divergence calibration (`IInt8EntropyCalibrator2`).
- `mse`: the range minimizing the expected int8 quantization MSE over the histogram.

Why hand-written: ONNX Runtime's calibrators recompute histograms per method and their
Entropy method collapses to MinMax at its default 128 bins; here every method reads the same
stored histogram, and a method that cannot really be applied says so in `TensorRange.method`
instead of silently returning MinMax.

Conventions: `symmetric=True` gives `[-a, a]` (signed int8, zero point 0, TensorRT);
`symmetric=False` gives an asymmetric `[lo, hi]` (uint8 with a zero point; `[0, a]` for
non-negative tensors). `symmetric=None` is each method's own convention: entropy is symmetric
(as TensorRT), the others asymmetric. Ranges are not widened to include zero: the quantizer
does that when its integer grid needs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from nnship.errors import CalibrationError

if TYPE_CHECKING:
    from nnship.calibration.table import TensorStatistics

METHODS = ("minmax", "percentile", "entropy", "mse")
"""Range methods `compute_range` knows."""

ENTROPY_START_BIN = 128
"""First candidate threshold bin of the KL search (TensorRT / pytorch-quantization default)."""


@dataclass(frozen=True)
class TensorRange:
    """A quantization range `[lo, hi]` (float units of the tensor) and the method that really
    produced it, e.g. "entropy", or "minmax (entropy fell back: ...)". Unpacks as `lo, hi`."""

    lo: float
    hi: float
    method: str = "minmax"

    def __iter__(self) -> Iterator[float]:
        yield self.lo
        yield self.hi

    @property
    def abs_max(self) -> float:
        return max(abs(self.lo), abs(self.hi))

    @property
    def width(self) -> float:
        return self.hi - self.lo


def check_method(method: str) -> str:
    """Return `method` lower-cased, or raise `CalibrationError` listing the known methods."""
    name = str(method).lower()
    if name not in METHODS:
        raise CalibrationError(
            f"Unknown calibration method '{method}': choose one of {', '.join(METHODS)}"
        )
    return name


def compute_range(
    stats: TensorStatistics,
    method: str,
    *,
    percentile: float = 99.99,
    symmetric: bool | None = None,
    num_bits: int = 8,
) -> TensorRange:
    """The range of one tensor by `method` (see the module doc for `symmetric`).

    `percentile` (defaults to 99.99, in percent) is used by the percentile method only.
    Raises `CalibrationError` for an unknown method or a tensor without finite values.
    """
    method = check_method(method)
    if not 0.0 < percentile <= 100.0:
        raise CalibrationError(f"percentile must be in (0, 100], got {percentile}")
    if stats.min is None or stats.max is None:
        raise CalibrationError(f"Tensor '{stats.name}' has no finite values: no range")
    if symmetric is None:
        symmetric = method == "entropy"
    lo, hi = float(stats.min), float(stats.max)
    if method == "minmax" or lo == hi or stats.hist_range == 0.0:
        amax = max(abs(lo), abs(hi))
        label = "minmax" if method == "minmax" else f"minmax ({method}: constant tensor)"
        return TensorRange(-amax, amax, label) if symmetric else TensorRange(lo, hi, label)
    counts, edges = stats.hist_counts.astype(np.float64), stats.bin_edges
    if method == "percentile":
        return _percentile(counts, edges, lo, hi, percentile, symmetric)
    if method == "entropy":
        return _entropy(stats, lo, hi, symmetric, num_bits)
    return _mse(counts, edges, lo, hi, symmetric, num_bits)


# -- percentile ----------------------------------------------------------------------------


def _quantile(counts: np.ndarray, edges: np.ndarray, q: float) -> float:
    """Value below which a fraction `q` of the histogram's mass lies (linear inside a bin)."""
    cdf = np.cumsum(counts)
    target = q * cdf[-1]
    j = int(np.searchsorted(cdf, target, side="left"))
    j = min(j, len(counts) - 1)
    before = cdf[j - 1] if j > 0 else 0.0
    inside = (target - before) / counts[j] if counts[j] > 0 else 0.0
    return float(edges[j] + (edges[j + 1] - edges[j]) * min(max(inside, 0.0), 1.0))


def _abs_hist(counts: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = len(counts) // 2
    return counts[n:] + counts[:n][::-1], edges[n:]


def _percentile(
    counts: np.ndarray, edges: np.ndarray, lo: float, hi: float, pct: float, symmetric: bool
) -> TensorRange:
    if symmetric:
        abs_counts, abs_edges = _abs_hist(counts, edges)
        amax = min(_quantile(abs_counts, abs_edges, pct / 100.0), max(abs(lo), abs(hi)))
        return TensorRange(-amax, amax, "percentile")
    tail = (1.0 - pct / 100.0) / 2.0  # split the clipped mass evenly between both tails
    new_lo = max(lo, _quantile(counts, edges, tail)) if lo < 0 else lo
    new_hi = min(hi, _quantile(counts, edges, 1.0 - tail))
    return TensorRange(new_lo, max(new_hi, new_lo), "percentile")


# -- entropy -------------------------------------------------------------------------------


def kl_threshold_bin(bins: np.ndarray, num_levels: int, start_bin: int = ENTROPY_START_BIN) -> int:
    """Index `i` of the histogram edge that minimizes KL(P || Q), TensorRT's entropy method.

    Follows `_compute_amax_entropy` in NVIDIA's pytorch-quantization
    (TensorRT/tools/pytorch-quantization/pytorch_quantization/calib/histogram.py) and
    Migacz, "8-bit Inference with TensorRT" (GTC 2017): for each candidate `i`, P is the
    histogram of |x| truncated at bin `i` with the outlier mass added to its last bin; Q
    merges those `i` bins into `num_levels` equal chunks and spreads each chunk's mass evenly
    over its non-empty bins. The first bin is set equal to the second (ignores the spike of
    exact zeros after ReLU, as the reference does); ties keep the largest threshold.
    Vectorized per candidate with integer chunk indices instead of `np.digitize`.
    """
    bins = bins.astype(np.float64).copy()
    if len(bins) > 1:
        bins[0] = bins[1]
    suffix = np.concatenate([np.cumsum(bins[::-1])[::-1], [0.0]])
    best_i, best_kl = len(bins), np.inf
    for i in range(start_bin, len(bins) + 1):
        head = bins[:i]
        p = head.copy()
        p[-1] += suffix[i]
        chunk = (np.arange(i) * num_levels) // i
        nonzero = head != 0
        chunk_sum = np.bincount(chunk, weights=head, minlength=num_levels)
        chunk_nz = np.bincount(chunk, weights=nonzero, minlength=num_levels)
        q = np.where(nonzero, chunk_sum[chunk] / np.maximum(chunk_nz[chunk], 1.0), 0.0)
        p_sum, q_sum = p.sum(), q.sum()
        if p_sum <= 0 or q_sum <= 0:
            continue
        p /= p_sum
        q /= q_sum
        mask = p > 0
        if np.any(q[mask] == 0):
            continue  # KL is infinite (scipy.stats.entropy returns inf)
        kl = float(np.sum(p[mask] * np.log(p[mask] / q[mask])))
        if kl <= best_kl:  # `<=`: last argmin, as the reference
            best_i, best_kl = i, kl
    return best_i


def _entropy(
    stats: TensorStatistics, lo: float, hi: float, symmetric: bool, num_bits: int
) -> TensorRange:
    amax_seen = max(abs(lo), abs(hi))
    unsigned = not symmetric and lo >= 0.0
    num_levels = 1 << (num_bits - 1 + int(unsigned))
    abs_counts, abs_edges = stats.abs_histogram()
    nonzero = np.flatnonzero(abs_counts)
    used = int(nonzero[-1]) + 1 if len(nonzero) else 0
    if used <= ENTROPY_START_BIN:
        # The trap ORT falls into (one candidate threshold -> MinMax): say so instead.
        reason = (
            f"minmax (entropy fell back: only {used} histogram bins cover the data, "
            f"the KL search needs more than {ENTROPY_START_BIN}; raise num_bins)"
        )
        return (
            TensorRange(-amax_seen, amax_seen, reason) if symmetric else TensorRange(lo, hi, reason)
        )
    i = kl_threshold_bin(abs_counts[:used], num_levels)
    amax = min(float(abs_edges[i]), amax_seen)
    if symmetric:
        return TensorRange(-amax, amax, "entropy")
    # Asymmetric: the KL threshold of |x| clips each side that reaches beyond it.
    return TensorRange(max(lo, -amax), min(hi, amax), "entropy")


# -- mse -----------------------------------------------------------------------------------


def _quant_mse(
    centres: np.ndarray,
    counts: np.ndarray,
    width: float,
    lo: np.ndarray,
    hi: np.ndarray,
    levels: int,
) -> np.ndarray:
    """Expected squared error of uniform quantization to `levels + 1` integer levels over
    `[lo[k], hi[k]]` (zero exactly representable) for each candidate `k`.

    Uniform-bin approximation: every value of a bin sits at its centre for the rounding and
    clipping error, plus the in-bin variance `width**2 / 12` (values spread uniformly in the bin).
    """
    out = np.empty(len(lo))
    for start in range(0, len(lo), 128):
        l_blk = lo[start : start + 128, None]
        h_blk = hi[start : start + 128, None]
        scale = np.maximum(h_blk - l_blk, 1e-30) / levels
        zero_point = np.round(-l_blk / scale)
        q = np.clip(np.round(centres[None, :] / scale) + zero_point, 0, levels)
        err = ((q - zero_point) * scale - centres[None, :]) ** 2
        out[start : start + 128] = (err * counts[None, :]).sum(axis=1)
    return out / max(counts.sum(), 1.0) + width**2 / 12.0


def _grid(start: float, stop: float, size: int = 256) -> np.ndarray:
    return np.linspace(start, stop, size + 1)[1:]


def _mse(
    counts: np.ndarray, edges: np.ndarray, lo: float, hi: float, symmetric: bool, num_bits: int
) -> TensorRange:
    nonzero = np.flatnonzero(counts)
    first, last = int(nonzero[0]), int(nonzero[-1]) + 1
    counts = counts[first:last]
    width = float(edges[1] - edges[0])
    centres = (edges[first:last] + edges[first + 1 : last + 1]) / 2.0
    amax_seen = max(abs(lo), abs(hi))
    if symmetric:  # signed int8 [-127, 127]: 254 steps over [-a, a]
        cand = _grid(0.0, amax_seen, 512)
        err = _quant_mse(centres, counts, width, -cand, cand, 2**num_bits - 2)
        amax = float(cand[int(np.argmin(err))])
        return TensorRange(-amax, amax, "mse")
    levels = 2**num_bits - 1
    if lo >= 0.0:  # non-negative: [0, a] on the unsigned grid
        cand = _grid(lo, hi, 512)
        err = _quant_mse(centres, counts, width, np.zeros_like(cand), cand, levels)
        return TensorRange(lo, float(cand[int(np.argmin(err))]), "mse")
    best_lo, best_hi = lo, hi
    for _ in range(3):  # coordinate descent: (lo, hi) interact only through the step size
        cand_hi = _grid(max(best_lo, 0.0), hi) if hi > 0 else np.array([hi])
        err = _quant_mse(centres, counts, width, np.full_like(cand_hi, best_lo), cand_hi, levels)
        best_hi = float(cand_hi[int(np.argmin(err))])
        cand_lo = -_grid(0.0, -lo)
        err = _quant_mse(centres, counts, width, cand_lo, np.full_like(cand_lo, best_hi), levels)
        best_lo = float(cand_lo[int(np.argmin(err))])
    return TensorRange(best_lo, best_hi, "mse")
