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
