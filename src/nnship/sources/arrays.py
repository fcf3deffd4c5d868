"""`ArrayData`: a DataSource over arrays already in memory (tests, benches, callables)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from nnship.core import DataSource, LabeledBatch, check_finite
from nnship.core.errors import DataError


class ArrayData(DataSource):
    """Named arrays sharing a first (sample) axis, with optional labels."""

    def __init__(
        self,
        inputs: dict[str, np.ndarray],
        labels: np.ndarray | None = None,
        *,
        name: str = "arrays",
    ) -> None:
        if not inputs:
            raise DataError(f"Data '{name}' holds no input arrays")
        counts = {k: int(np.asarray(v).shape[0]) if np.ndim(v) else 0 for k, v in inputs.items()}
        if len(set(counts.values())) != 1:
            raise DataError(f"Data '{name}': arrays have different sample counts {counts}")
        n = next(iter(counts.values()))
        if n == 0:
            raise DataError(f"Data '{name}' is empty (0 samples)")
        if labels is not None and int(np.asarray(labels).shape[0]) != n:
            raise DataError(
                f"Data '{name}': 'labels' has {np.asarray(labels).shape[0]} rows, inputs have {n}"
            )
        for key, value in inputs.items():
            check_finite(key, value, where=name)
        self._inputs = {k: np.asarray(v) for k, v in inputs.items()}
        self._labels = None if labels is None else np.asarray(labels)
        self._n = n
        self._name = name

    @property
    def num_samples(self) -> int:
        return self._n

    @property
    def input_names(self) -> list[str]:
        return list(self._inputs)

    @property
    def has_labels(self) -> bool:
        return self._labels is not None

    def iter_batches(self, batch_size: int = 1) -> Iterator[LabeledBatch]:
        for start in range(0, self._n, batch_size):
            stop = start + batch_size
            labels = None if self._labels is None else self._labels[start:stop]
            yield LabeledBatch({k: v[start:stop] for k, v in self._inputs.items()}, labels)

    def describe(self) -> str:
        return f"{self._name} ({self._n} samples)"
