"""Folders of .npy/.npz files stream one file at a time; rebatch re-cuts chunks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nnship.core import TensorSpec
from nnship.core.errors import DataError
from nnship.sources import ArrayData
from nnship.sources.data import open_data
from nnship.sources.streams import ArrayFolderData, rebatch

X = TensorSpec("x", (1, 2, 3))


def _sample(i: int) -> np.ndarray:
    return np.full((2, 3), i, dtype=np.float32)


def test_rebatch_cuts_across_chunks_and_stops_at_limit() -> None:
    chunks = [
        ({"x": np.arange(n)[:, None] + 10 * i}, np.arange(n)) for i, n in enumerate([2, 3, 1, 4])
    ]
    sizes = [b.inputs["x"].shape[0] for b in rebatch(iter(chunks), 3)]
    assert sizes == [3, 3, 3, 1]
    limited = list(rebatch(iter(chunks), 4, limit=5))
    assert [b.inputs["x"][:, 0].tolist() for b in limited] == [[0, 1, 10, 11], [12]]
    assert [b.labels.tolist() for b in limited] == [[0, 1, 0, 1], [2]]


def test_folder_of_single_samples(tmp_path: Path) -> None:
    for i in range(5):
        np.save(tmp_path / f"s{i:02d}.npy", _sample(i).astype(np.float64))
    source = open_data(tmp_path, input_specs=[X])
    assert isinstance(source, ArrayFolderData)
    assert source.num_samples == 5 and source.input_names == ["x"]
    batches = list(source.iter_batches(2))
    assert [b.inputs["x"].shape for b in batches] == [(2, 2, 3), (2, 2, 3), (1, 2, 3)]
    assert batches[0].inputs["x"].dtype == np.float32
    assert [float(b.inputs["x"][j, 0, 0]) for b in batches for j in range(len(b.inputs["x"]))] == [
        0,
        1,
        2,
        3,
        4,
    ]


def test_folder_of_npz_batches_with_labels_and_limit(tmp_path: Path) -> None:
    for i in range(3):
        np.savez(tmp_path / f"b{i}.npz", x=np.stack([_sample(i)] * 4), labels=np.full(4, i))
    source = open_data(tmp_path, input_specs=[X], limit=10)
    assert source.num_samples == 10 and source.has_labels
    labels = np.concatenate([b.labels for b in source.iter_batches(3)])
    assert labels.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]


def test_folder_checks_headers_at_open_and_names_the_file(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.stack([_sample(0)] * 2))
    np.save(tmp_path / "b.npy", np.zeros((2, 5, 3), np.float32))
    with pytest.raises(DataError, match=r"Input 'x' in '.*b.npy'.*\(2, 5, 3\)"):
        open_data(tmp_path, input_specs=[X])


def test_folder_reads_only_headers_at_construction(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.stack([_sample(0)] * 2))
    np.save(tmp_path / "b.npy", np.stack([_sample(1)] * 2))
    raw = (tmp_path / "b.npy").read_bytes()
    (tmp_path / "b.npy").write_bytes(raw[:-8])  # header intact, data truncated
    source = open_data(tmp_path, input_specs=[X])  # would fail if it read the data
    assert source.num_samples == 4
    batches = source.iter_batches(2)
    next(batches)
    with pytest.raises(DataError, match="b.npy"):
        next(batches)


def test_folder_nan_found_while_streaming(tmp_path: Path) -> None:
    bad = _sample(0)
    bad[1, 1] = np.nan
    np.save(tmp_path / "a.npy", bad)
    source = open_data(tmp_path)
    with pytest.raises(DataError, match="a.npy' holds 1 NaN/Inf"):
        list(source.iter_batches(1))


def test_folder_npy_for_multi_input_model(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.zeros((2, 6), np.int64))
    specs = [
        TensorSpec("input_ids", (1, 6), "int64"),
        TensorSpec("attention_mask", (1, 6), "int64"),
    ]
    with pytest.raises(DataError, match="use .npz files keyed by input name"):
        open_data(tmp_path, input_specs=specs)


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="holds no .npy/.npz files and no images"):
        open_data(tmp_path)


def test_folder_fingerprint_follows_content(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", _sample(0))
    first = open_data(tmp_path).fingerprint()
    np.save(tmp_path / "a.npy", _sample(1))
    assert open_data(tmp_path).fingerprint() != first


def test_wrapped_datasource_is_checked_and_limited() -> None:
    inner = ArrayData({"x": np.zeros((6, 2, 3), np.float64)})
    source = open_data(inner, input_specs=[X], limit=4)
    assert source.num_samples == 4
    batches = list(source.iter_batches(3))
    assert [b.inputs["x"].dtype for b in batches] == [np.float32, np.float32]
    assert sum(len(b.inputs["x"]) for b in batches) == 4
