"""Data sources: finite, re-iterable streams of named numpy batches (labels beside them)."""

from __future__ import annotations

import abc
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from nnship.core.tensors import Batch


class LabeledBatch(NamedTuple):
    """A batch of inputs and, beside it, optional labels (class ids, first axis = batch)."""

    inputs: Batch
    labels: np.ndarray | None = None


class DataSource(abc.ABC):
    """A finite, re-iterable source of batches of named numpy arrays.

    Sources stream: they never need to hold all samples in memory (image folders don't).
    """

    @property
    @abc.abstractmethod
    def num_samples(self) -> int:
        """Number of samples (first-axis rows) in the whole source."""

    @property
    @abc.abstractmethod
    def input_names(self) -> list[str]:
        """Names of the input arrays each batch holds."""

    @property
    def has_labels(self) -> bool:
        return False

    @abc.abstractmethod
    def iter_batches(self, batch_size: int = 1) -> Iterator[LabeledBatch]:
        """Yield batches of at most `batch_size` samples, in a fixed order."""

    def describe(self) -> str:
        """A short human description (path and sample count) used in messages and reports."""
        return f"{type(self).__name__}({self.num_samples} samples)"

    def fingerprint(self) -> str:
        """A hash of the data's content, for reports and reproducibility. Subclasses may cache."""
        import hashlib

        digest = hashlib.sha256()
        for item in self.iter_batches(64):
            for name in sorted(item.inputs):
                arr = np.ascontiguousarray(item.inputs[name])
                digest.update(name.encode())
                digest.update(str(arr.dtype).encode())
                digest.update(str(arr.shape).encode())
                digest.update(arr.tobytes())
            if item.labels is not None:
                digest.update(np.ascontiguousarray(item.labels).tobytes())
        return digest.hexdigest()


class SampleWindow(DataSource):
    """Samples `[start, stop)` of another source, streamed in its order: the one way to cap or
    slice a source (`first_samples(data, n)` is the first `n`)."""

    def __init__(self, data: DataSource, start: int, stop: int) -> None:
        self._data = data
        self._start = max(0, min(start, data.num_samples))
        self._stop = max(self._start, min(stop, data.num_samples))

    @property
    def num_samples(self) -> int:
        return self._stop - self._start

    @property
    def input_names(self) -> list[str]:
        return self._data.input_names

    @property
    def has_labels(self) -> bool:
        return self._data.has_labels

    def iter_batches(self, batch_size: int = 1) -> Iterator[LabeledBatch]:
        seen = 0
        for item in self._data.iter_batches(batch_size):
            n = len(next(iter(item.inputs.values())))
            lo, hi = max(self._start - seen, 0), min(self._stop - seen, n)
            seen += n
            if hi > lo:
                labels = None if item.labels is None else item.labels[lo:hi]
                yield LabeledBatch({k: v[lo:hi] for k, v in item.inputs.items()}, labels)
            if seen >= self._stop:
                return

    def describe(self) -> str:
        return f"{self._data.describe()}, samples {self._start}..{self._stop - 1}"


def first_samples(data: DataSource, limit: int | None) -> DataSource:
    """The first `limit` samples of `data` (`data` itself when `limit` is None)."""
    return data if limit is None else _FirstSamples(data, 0, limit)


class _FirstSamples(SampleWindow):
    def describe(self) -> str:
        return f"{self._data.describe()}, first {self._stop}"
