"""Data sources that stream: folders of `.npy`/`.npz` files, Python callables yielding batches,
and a checking wrapper around any `DataSource`. None holds more than one file or chunk at once.
"""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nnship.core import Batch, DataSource, LabeledBatch, TensorSpec, check_finite
from nnship.core.errors import DataError
from nnship.sources.conform import check_header, check_names, conform_batch

Chunk = tuple[Batch, "np.ndarray | None", str]
"""Inputs, labels and a description of where they came from (for error messages)."""


def _rows(batch: Batch) -> int:
    return int(np.asarray(next(iter(batch.values()))).shape[0])


def _concat(pieces: list[tuple[Batch, np.ndarray | None]]) -> LabeledBatch:
    if len(pieces) == 1:
        return LabeledBatch(*pieces[0])
    inputs = {name: np.concatenate([p[0][name] for p in pieces]) for name in pieces[0][0]}
    labels = None
    if pieces[0][1] is not None:
        labels = np.concatenate([np.asarray(p[1]) for p in pieces])
    return LabeledBatch(inputs, labels)


def rebatch(
    chunks: Iterable[tuple[Batch, np.ndarray | None]], batch_size: int, limit: int | None = None
) -> Iterator[LabeledBatch]:
    """Re-cut chunks of any size into batches of `batch_size` rows (the last may be smaller),
    stopping after `limit` rows (default: all). Holds at most one batch plus one chunk."""
    if batch_size < 1:
        raise DataError(f"batch_size must be at least 1, got {batch_size}")
    remaining = limit if limit is not None else float("inf")
    pending: list[tuple[Batch, np.ndarray | None]] = []
    buffered = 0
    for inputs, labels in chunks:
        if remaining <= 0:
            break
        n = _rows(inputs)
        if n > remaining:
            n = int(remaining)
            inputs = {k: v[:n] for k, v in inputs.items()}
            labels = None if labels is None else labels[:n]
        remaining -= n
        pending.append((inputs, labels))
        buffered += n
        while buffered >= batch_size:
            merged = _concat(pending)
            head = {k: v[:batch_size] for k, v in merged.inputs.items()}
            tail = {k: v[batch_size:] for k, v in merged.inputs.items()}
            labels_all = merged.labels
            yield LabeledBatch(head, None if labels_all is None else labels_all[:batch_size])
            buffered -= batch_size
            pending = [(tail, None if labels_all is None else labels_all[batch_size:])]
            if not buffered:
                pending = []
    if buffered:
        yield _concat(pending)


class StreamingData(DataSource):
    """Base of the streaming sources: subclasses yield raw chunks; this class conforms and checks
    each against `input_specs` (or rejects NaN/Inf when there are none), checks labels, and
    re-cuts chunks into batches, stopping at `limit` samples."""

    def __init__(self, *, specs: Sequence[TensorSpec] | None, limit: int | None) -> None:
        self._specs = list(specs) if specs else None
        self._limit = limit

    def _chunks(self, batch_size: int) -> Iterator[Chunk]:
        raise NotImplementedError

    def _checked(self, batch_size: int) -> Iterator[tuple[Batch, np.ndarray | None]]:
        with_labels: bool | None = None
        for inputs, labels, where in self._chunks(batch_size):
            if not inputs:
                raise DataError(f"{where} holds no input arrays")
            if self._specs:
                inputs = conform_batch(inputs, self._specs, where=where)
            else:
                for name, value in inputs.items():
                    check_finite(name, value, where=where)
            counts = {
                k: int(np.asarray(v).shape[0]) if np.ndim(v) else 0 for k, v in inputs.items()
            }
            if len(set(counts.values())) != 1:
                raise DataError(f"{where}: arrays have different sample counts {counts}")
            if labels is not None and len(labels) != next(iter(counts.values())):
                raise DataError(
                    f"{where}: labels have {len(labels)} rows, inputs have {next(iter(counts.values()))}"
                )
            if with_labels is None:
                with_labels = labels is not None
            elif with_labels != (labels is not None):
                raise DataError(f"{where}: some chunks have labels and others do not")
            yield inputs, labels

    def iter_batches(self, batch_size: int = 1) -> Iterator[LabeledBatch]:
        return rebatch(self._checked(batch_size), batch_size, self._limit)


class CheckedData(StreamingData):
    """Any `DataSource`, its batches conformed to `specs` and cut at `limit` samples."""

    def __init__(
        self, inner: DataSource, specs: Sequence[TensorSpec] | None, limit: int | None = None
    ) -> None:
        super().__init__(specs=specs, limit=limit)
        self.inner = inner

    @property
    def num_samples(self) -> int:
        n = self.inner.num_samples
        return n if self._limit is None else min(n, self._limit)

    @property
    def input_names(self) -> list[str]:
        return self.inner.input_names

    @property
    def has_labels(self) -> bool:
        return self.inner.has_labels

    def _chunks(self, batch_size: int) -> Iterator[Chunk]:
        where = self.inner.describe()
        for item in self.inner.iter_batches(batch_size):
            yield item.inputs, item.labels, where

    def describe(self) -> str:
        return self.inner.describe()

    def fingerprint(self) -> str:
        return hashlib.sha256(f"{self.inner.fingerprint()}\0{self._limit}".encode()).hexdigest()


def _npy_header(handle: Any) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(handle)
    reader = {
        (1, 0): np.lib.format.read_array_header_1_0,
        (2, 0): np.lib.format.read_array_header_2_0,
    }.get(version)
    if reader is None:
        raise ValueError(f"unsupported .npy format version {version}")
    shape, _fortran, dtype = reader(handle)
    return tuple(shape), np.dtype(dtype)


def read_headers(path: Path, npy_name: str) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shapes and dtypes of the arrays in a `.npy` (named `npy_name`) or `.npz`, reading only
    the headers. Raises `DataError` naming the file if it is corrupt."""
    try:
        if path.suffix.lower() == ".npy":
            with open(path, "rb") as handle:
                return {npy_name: _npy_header(handle)}
        headers = {}
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                if member.endswith(".npy"):
                    with archive.open(member) as handle:
                        headers[member[: -len(".npy")]] = _npy_header(handle)
        return headers
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"Data file '{path}' is corrupt or not a numpy file: {exc}") from exc


class ArrayFolderData(StreamingData):
    """A folder of `.npy` / `.npz` files, read one file at a time in sorted name order.

    Each file holds a batch (arrays with the batch axis) or one sample (one axis fewer than the
    model input). A `.npy` feeds the model's single input (named "input" without specs); a
    `.npz` is keyed by input name, with optional labels under `labels_key`. Construction reads
    only the file headers (and checks them against `specs`).
    """

    def __init__(
        self,
        root: Path,
        *,
        specs: Sequence[TensorSpec] | None = None,
        labels_key: str = "labels",
        limit: int | None = None,
    ) -> None:
        super().__init__(specs=specs, limit=limit)
        self.root = root
        self._labels_key = labels_key
        self.files = sorted(p for p in root.iterdir() if p.suffix.lower() in (".npy", ".npz"))
        if not self.files:
            raise DataError(f"Data folder '{root}' holds no .npy or .npz files")
        self._npy_name = self._specs[0].name if self._specs and len(self._specs) == 1 else "input"
        self._rows = [self._header_rows(p) for p in self.files]
        first = read_headers(self.files[0], self._npy_name)
        self._names = [n for n in first if n != labels_key]
        self._has_labels = labels_key in first
        if sum(self._rows) == 0:
            raise DataError(f"Data folder '{root}' is empty (0 samples)")

    def _header_rows(self, path: Path) -> int:
        headers = read_headers(path, self._npy_name)
        inputs = {k: v for k, v in headers.items() if k != self._labels_key}
        if not inputs:
            raise DataError(f"Data file '{path}' holds no input arrays")
        if self._specs:
            if path.suffix.lower() == ".npy" and len(self._specs) > 1:
                raise DataError(
                    f"Data file '{path}' is a .npy (one array) but the model has inputs "
                    f"{[s.name for s in self._specs]}; use .npz files keyed by input name"
                )
            check_names(self._specs, list(inputs), where=f"'{path}'")
            by_name = {s.name: s for s in self._specs}
            rows = {
                check_header(by_name[k], shape, dtype, where=f"'{path}'")
                for k, (shape, dtype) in inputs.items()
            }
        else:
            rows = {shape[0] if shape else 0 for shape, _ in inputs.values()}
        if len(rows) != 1:
            raise DataError(f"Data file '{path}': arrays have different sample counts")
        return rows.pop()

    @property
    def num_samples(self) -> int:
        total = sum(self._rows)
        return total if self._limit is None else min(total, self._limit)

    @property
    def input_names(self) -> list[str]:
        return list(self._names)

    @property
    def has_labels(self) -> bool:
        return self._has_labels

    def _chunks(self, batch_size: int) -> Iterator[Chunk]:
        for path in self.files:
            where = f"'{path}'"
            try:
                if path.suffix.lower() == ".npy":
                    arrays = {self._npy_name: np.load(path, allow_pickle=False)}
                else:
                    with np.load(path, allow_pickle=False) as loaded:
                        arrays = dict(loaded.items())
            except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
                raise DataError(f"Data file {where} is corrupt: {exc}") from exc
            labels = arrays.pop(self._labels_key, None)
            if labels is not None and labels.ndim == 0:
                labels = labels[None]
            yield arrays, labels, where

    def describe(self) -> str:
        return f"data folder '{self.root}' ({len(self.files)} files, {self.num_samples} samples)"

    def fingerprint(self) -> str:
        """SHA-256 of the files' names and bytes, the labels key and the limit."""
        digest = hashlib.sha256(f"{self._labels_key}\0{self._limit}\0".encode())
        for path in self.files:
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        return digest.hexdigest()


def _chunk_of(item: Any, labels_key: str, where: str) -> tuple[Batch, np.ndarray | None]:
    if isinstance(item, LabeledBatch):
        return dict(item.inputs), item.labels
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], Mapping):
        return dict(item[0]), None if item[1] is None else np.asarray(item[1])
    if isinstance(item, Mapping):
        inputs = {str(k): np.asarray(v) for k, v in item.items() if k != labels_key}
        labels = item.get(labels_key)
        return inputs, None if labels is None else np.asarray(labels)
    raise DataError(
        f"{where} yielded a {type(item).__name__}; expected a dict of arrays "
        f"(optionally with '{labels_key}'), an (inputs, labels) pair or a LabeledBatch"
    )


class CallableData(StreamingData):
    """Batches from a Python callable returning an iterable of dicts of arrays (optionally with
    labels under `labels_key`). The callable is called again for every pass over the data;
    `num_samples` costs one pass (cached). `name` describes the source in messages."""

    def __init__(
        self,
        fn: Callable[[], Iterable[Any]],
        name: str,
        *,
        specs: Sequence[TensorSpec] | None = None,
        labels_key: str = "labels",
        limit: int | None = None,
    ) -> None:
        super().__init__(specs=specs, limit=limit)
        self._fn = fn
        self._name = name
        self._labels_key = labels_key
        self._count: int | None = None
        first = next(iter(self._checked(1)), None)  # fail early on a malformed first batch
        if first is None:
            raise DataError(f"{name} yielded no batches")
        self._first_names = list(first[0])
        self._has_labels = first[1] is not None

    def _chunks(self, batch_size: int) -> Iterator[Chunk]:
        where = self._name
        try:
            items = iter(self._fn())
        except Exception as exc:
            raise DataError(f"{where} raised {type(exc).__name__}: {exc}") from exc
        while True:
            try:
                item = next(items)
            except StopIteration:
                return
            except Exception as exc:
                raise DataError(f"{where} raised {type(exc).__name__}: {exc}") from exc
            inputs, labels = _chunk_of(item, self._labels_key, where)
            yield inputs, labels, where

    @property
    def num_samples(self) -> int:
        if self._count is None:
            self._count = sum(_rows(b.inputs) for b in self.iter_batches(256))
        return self._count

    @property
    def input_names(self) -> list[str]:
        return list(self._first_names)

    @property
    def has_labels(self) -> bool:
        return self._has_labels

    def describe(self) -> str:
        return self._name
