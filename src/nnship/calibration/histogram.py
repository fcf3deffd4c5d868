"""A streaming, adaptive-range histogram whose memory is fixed by its bin count.

Why hand-written: ONNX Runtime's histogram calibrators keep every batch's activations (or
re-histogram them at the end) and exhaust memory on real models; PyTorch's HistogramObserver
interpolates when it re-bins, and pytorch-quantization's collector appends bins without bound
when the range grows. Here re-binning is exact and the bin count never changes.

Layout: `2 * num_bins` equal bins over the symmetric range `[-A, A]` (`num_bins` bins per side,
so `num_bins` is the resolution of `|x|` over `[0, A]`, TensorRT's convention). Bin `i` covers
`[-A + i*w, -A + (i+1)*w)` with `w = A / num_bins`; zero is always an edge (bin `num_bins`
starts at 0), so the histogram of `|x|` is an exact fold: `abs[j] = h[N + j] + h[N - 1 - j]`.

Growth: when a batch holds `|x| > A`, the range grows by the smallest integer factor
`k = ceil(max|x| / A)` to `A' = k*A`, `w' = k*w`. An old bin `i` starts at
`(i + (k-1)*N) * w` from `-A'` (an integer number of old widths, because `N` bins span each
side), so it falls entirely inside new bin `floor((i + (k-1)*N) / k)`: counts are merged
exactly, never interpolated. After growth `A' < 2 * max|x|` unless `k == 1`, so at least
`num_bins / 2` bins always cover `[0, max|x|]`.
"""

from __future__ import annotations

import math

import numpy as np


class AdaptiveHistogram:
    """Histogram of a stream of float values; `update` many times, read `counts`/`edges`.

    `num_bins` bins per side (defaults to 2048): memory is `2 * num_bins` int64 counts.
    Non-finite values must be filtered out by the caller.
    """

    def __init__(self, num_bins: int = 2048) -> None:
        if num_bins < 8:
            raise ValueError(f"num_bins must be >= 8, got {num_bins}")
        self.num_bins = int(num_bins)
        self.amax = 0.0
        """Half-width `A` of the covered range `[-A, A]`; 0 until a non-zero value is seen."""
        self.counts = np.zeros(2 * self.num_bins, dtype=np.int64)
        self._zeros = 0  # zeros seen while `amax == 0` (no range yet)

    @property
    def total(self) -> int:
        return int(self.counts.sum()) + self._zeros

    @property
    def edges(self) -> np.ndarray:
        """The `2 * num_bins + 1` bin edges (float64)."""
        return np.linspace(-self.amax, self.amax, 2 * self.num_bins + 1)

    def update(self, values: np.ndarray) -> None:
        """Add finite `values` (any shape) to the histogram, growing the range if needed."""
        flat = np.asarray(values).reshape(-1)
        if flat.size == 0:
            return
        batch_amax = float(max(-float(flat.min()), float(flat.max())))
        if batch_amax == 0.0:
            if self.amax == 0.0:
                self._zeros += flat.size
            else:
                self.counts[self.num_bins] += flat.size
            return
        if self.amax == 0.0:
            self.amax = batch_amax
            if self._zeros:
                self.counts[self.num_bins] += self._zeros
                self._zeros = 0
        elif batch_amax > self.amax:
            self._grow(math.ceil(batch_amax / self.amax))
            while batch_amax > self.amax:  # guard against rounding in the ratio
                self._grow(2)
        # Bin index = floor(x * N / A + N). float32 is exact enough for <= 2**16 bins and
        # cannot overflow: |x| <= A, so |x * N / A| <= N even for A ~ 3.4e38 (mask biases).
        scale = self.num_bins / self.amax
        dtype = np.float64 if flat.dtype == np.float64 or scale > 1e30 else np.float32
        position = np.multiply(flat, scale, dtype=dtype)
        position += self.num_bins
        index = position.astype(np.int64)  # truncation == floor: position >= 0
        index[index >= 2 * self.num_bins] = 2 * self.num_bins - 1  # x == +A: last bin
        self.counts += np.bincount(index, minlength=2 * self.num_bins)

    def _grow(self, factor: int) -> None:
        """Widen `[-A, A]` by the integer `factor`, merging old bins exactly (see module doc)."""
        if factor <= 1:
            return
        n = self.num_bins
        old = np.arange(2 * n)
        # (i + (k-1)*N) // k == N + (i - N) // k; for k > N that is N-1 or N whatever k is,
        # so k is capped there (a jump to 3.4e38 must not overflow the integer math).
        target = n + (old - n) // min(factor, n + 1)
        merged = np.zeros_like(self.counts)
        np.add.at(merged, target, self.counts)
        self.counts = merged
        self.amax *= factor

    def abs_histogram(self) -> tuple[np.ndarray, np.ndarray]:
        """Histogram of `|x|`: `num_bins` counts over `[0, A]` and their `num_bins + 1` edges."""
        n = self.num_bins
        folded = self.counts[n:] + self.counts[:n][::-1]
        folded = folded.copy()
        folded[0] += self._zeros
        return folded, np.linspace(0.0, self.amax, n + 1)
