"""`TensorStatistics`: what calibration records of one float tensor (range, histogram, channel
maxima), the input of every range method and the rows of the `CalibrationTable`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class TensorStatistics:
    """Statistics of one float tensor over the calibration data.

    `hist_counts` holds `2 * num_bins` counts of equal bins over `[-hist_range, hist_range]`
    (see `nnship.calibration.histogram`). `count` counts finite values only; `min`/`max` are
    None when no finite value was seen. `channel_abs_max` (max |x| per channel along
    `channel_axis`) is recorded for inputs of MatMul/Gemm, for activation smoothing.
    """

    name: str
    dtype: str
    count: int
    num_nonfinite: int
    min: float | None
    max: float | None
    hist_counts: np.ndarray
    hist_range: float
    channel_axis: int | None = None
    channel_abs_max: np.ndarray | None = None

    @property
    def abs_max(self) -> float | None:
        if self.min is None or self.max is None:
            return None
        return max(abs(self.min), abs(self.max))

    @property
    def num_bins(self) -> int:
        """Bins per side (the resolution of |x| over `[0, hist_range]`)."""
        return len(self.hist_counts) // 2

    @property
    def bin_edges(self) -> np.ndarray:
        return np.linspace(-self.hist_range, self.hist_range, len(self.hist_counts) + 1)

    def abs_histogram(self) -> tuple[np.ndarray, np.ndarray]:
        """Counts of |x| in `num_bins` bins over `[0, hist_range]` and their edges."""
        n = self.num_bins
        folded = self.hist_counts[n:] + self.hist_counts[:n][::-1]
        return folded, np.linspace(0.0, self.hist_range, n + 1)

    def to_dict(self) -> dict[str, Any]:
        index = np.flatnonzero(self.hist_counts)  # sparse: most bins of ReLU outputs are empty
        out: dict[str, Any] = {
            "dtype": self.dtype,
            "count": int(self.count),
            "num_nonfinite": int(self.num_nonfinite),
            "min": self.min,
            "max": self.max,
            "num_bins": self.num_bins,
            "hist_range": float(self.hist_range),
            "hist_index": index.tolist(),
            "hist_count": self.hist_counts[index].tolist(),
        }
        if self.channel_abs_max is not None:
            out["channel_axis"] = self.channel_axis
            out["channel_abs_max"] = [float(v) for v in self.channel_abs_max]
        return out

    @classmethod
    def from_dict(cls, name: str, data: dict[str, Any]) -> TensorStatistics:
        counts = np.zeros(2 * int(data["num_bins"]), dtype=np.int64)
        counts[np.asarray(data["hist_index"], dtype=np.int64)] = np.asarray(
            data["hist_count"], dtype=np.int64
        )
        channel = data.get("channel_abs_max")
        return cls(
            name=name,
            dtype=str(data["dtype"]),
            count=int(data["count"]),
            num_nonfinite=int(data["num_nonfinite"]),
            min=None if data["min"] is None else float(data["min"]),
            max=None if data["max"] is None else float(data["max"]),
            hist_counts=counts,
            hist_range=float(data["hist_range"]),
            channel_axis=data.get("channel_axis"),
            channel_abs_max=None if channel is None else np.asarray(channel, dtype=np.float64),
        )
