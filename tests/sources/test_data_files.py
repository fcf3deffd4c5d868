"""open_data on .npy / .npz files, dicts and callables, with the errors users cause."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from nnship.core import TensorSpec
from nnship.core.errors import DataError
from nnship.sources.data import DataConfig, open_data, open_data_config

X = TensorSpec("x", (1, 3, 4, 4))
IDS = TensorSpec("input_ids", (1, 6), "int64")
MASK = TensorSpec("attention_mask", (1, 6), "int64")


def _images(n: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3, 4, 4)).astype(np.float32)


def _collect(source, batch_size: int = 2):
    batches = list(source.iter_batches(batch_size))
    inputs = {k: np.concatenate([b.inputs[k] for b in batches]) for k in batches[0].inputs}
    labels = None if batches[0].labels is None else np.concatenate([b.labels for b in batches])
    return batches, inputs, labels


def test_npy_is_keyed_by_the_single_input(tmp_path: Path) -> None:
    data = _images(5)
    np.save(tmp_path / "calib.npy", data.astype(np.float64))
    source = open_data(tmp_path / "calib.npy", input_specs=[X])
    batches, inputs, labels = _collect(source)
    assert source.num_samples == 5 and source.input_names == ["x"] and labels is None
    assert [b.inputs["x"].shape[0] for b in batches] == [2, 2, 1]
    assert inputs["x"].dtype == np.float32
    np.testing.assert_array_equal(inputs["x"], data)


def test_npy_without_specs_is_named_input(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", _images(2))
    assert open_data(tmp_path / "a.npy").input_names == ["input"]


def test_npy_for_multi_input_model_says_use_npz(tmp_path: Path) -> None:
    np.save(tmp_path / "ids.npy", np.zeros((2, 6), np.int64))
    with pytest.raises(DataError, match=r"\.npy \(one array\).*use a \.npz keyed by input name"):
        open_data(tmp_path / "ids.npy", input_specs=[IDS, MASK])


def test_npz_keyed_by_name_with_labels(tmp_path: Path) -> None:
    ids = np.arange(24, dtype=np.int32).reshape(4, 6)
    np.savez(
        tmp_path / "d.npz",
        input_ids=ids,
        attention_mask=np.ones((4, 6), np.int64),
        labels=np.arange(4),
    )
    source = open_data(tmp_path / "d.npz", input_specs=[IDS, MASK])
    _, inputs, labels = _collect(source, 3)
    assert source.has_labels and labels.tolist() == [0, 1, 2, 3]
    assert inputs["input_ids"].dtype == np.int64
    np.testing.assert_array_equal(inputs["input_ids"], ids)


def test_custom_labels_key_and_limit(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=_images(6), y=np.arange(6))
    source = open_data(tmp_path / "d.npz", input_specs=[X], labels_key="y", limit=4)
    _, inputs, labels = _collect(source)
    assert source.num_samples == 4 and labels.tolist() == [0, 1, 2, 3]


def test_npz_wrong_input_name(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", image=_images(2))
    with pytest.raises(DataError, match=r"d.npz.*model expects \['x'\], data has \['image'\]"):
        open_data(tmp_path / "d.npz", input_specs=[X])


def test_npz_wrong_rank_names_tensor_and_shapes(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((2, 48), np.float32))
    with pytest.raises(DataError, match=r"Input 'x' in '.*d.npz'.*\[batch, 3, 4, 4\].*\(2, 48\)"):
        open_data(tmp_path / "d.npz", input_specs=[X])


def test_npz_wrong_dtype(tmp_path: Path) -> None:
    np.savez(
        tmp_path / "d.npz",
        input_ids=np.zeros((2, 6), np.float32),
        attention_mask=np.ones((2, 6), np.int64),
    )
    with pytest.raises(DataError, match="'input_ids'.*expected dtype int64, got float32"):
        open_data(tmp_path / "d.npz", input_specs=[IDS, MASK])


def test_empty_files(tmp_path: Path) -> None:
    np.save(tmp_path / "e.npy", np.zeros((0, 3, 4, 4), np.float32))
    with pytest.raises(DataError, match="e.npy.*empty"):
        open_data(tmp_path / "e.npy", input_specs=[X])
    np.savez(tmp_path / "e.npz")
    with pytest.raises(DataError, match="e.npz' is empty"):
        open_data(tmp_path / "e.npz")
    (tmp_path / "zero.npy").write_bytes(b"")
    with pytest.raises(DataError, match="zero.npy"):
        open_data(tmp_path / "zero.npy")


def test_nan_in_file(tmp_path: Path) -> None:
    data = _images(3)
    data[2, 0, 0, 0] = np.inf
    np.save(tmp_path / "bad.npy", data)
    with pytest.raises(DataError, match="'x' in '.*bad.npy' holds 1 NaN/Inf"):
        open_data(tmp_path / "bad.npy", input_specs=[X])
    with pytest.raises(DataError, match="NaN/Inf"):
        open_data(tmp_path / "bad.npy")


def test_corrupt_npz(tmp_path: Path) -> None:
    np.savez_compressed(tmp_path / "d.npz", x=_images(20))
    raw = (tmp_path / "d.npz").read_bytes()
    (tmp_path / "d.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="d.npz"):
        open_data(tmp_path / "d.npz", input_specs=[X])


def test_pickled_npy_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="obj.npy' holds Python objects"):
        open_data(tmp_path / "obj.npy")


def test_missing_path_and_unknown_type(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nope.npz' does not exist"):
        open_data(tmp_path / "nope.npz")
    (tmp_path / "d.csv").write_text("1,2\n")
    with pytest.raises(DataError, match="unsupported type '.csv'"):
        open_data(tmp_path / "d.csv")


def test_fingerprint_hashes_file_bytes(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", _images(3, seed=1))
    first = open_data(tmp_path / "a.npy", input_specs=[X]).fingerprint()
    assert first == open_data(tmp_path / "a.npy", input_specs=[X]).fingerprint()
    np.save(tmp_path / "a.npy", _images(3, seed=2))
    assert open_data(tmp_path / "a.npy", input_specs=[X]).fingerprint() != first


def test_dict_source() -> None:
    source = open_data({"x": _images(3), "labels": [0, 1, 1]}, input_specs=[X])
    assert source.has_labels and source.num_samples == 3
    with pytest.raises(DataError, match="data dict.*unexpected \\['z'\\]"):
        open_data({"x": _images(3), "z": _images(3)}, input_specs=[X])


def _write_module(tmp_path: Path) -> Path:
    path = tmp_path / "calib_data.py"
    path.write_text(
        textwrap.dedent(
            """
            import numpy as np

            def one_dict():
                return {"x": np.ones((3, 3, 4, 4)), "labels": np.array([0, 1, 2])}

            def batches():
                for i in range(3):
                    yield {"x": np.full((2, 3, 4, 4), i, dtype=np.float32)}

            def broken():
                raise RuntimeError("dataset server down")

            def wrong():
                return 42
            """
        )
    )
    return path


def test_callable_returning_dict(tmp_path: Path) -> None:
    _write_module(tmp_path)
    source = open_data("calib_data.py:one_dict", input_specs=[X], base_dir=tmp_path)
    _, inputs, labels = _collect(source)
    assert inputs["x"].dtype == np.float32 and labels.tolist() == [0, 1, 2]


def test_callable_generator_is_rebatched_and_reiterable(tmp_path: Path) -> None:
    _write_module(tmp_path)
    source = open_data(f"{tmp_path / 'calib_data.py'}:batches", input_specs=[X], limit=5)
    assert source.num_samples == 5
    for _ in range(2):
        batches, inputs, _ = _collect(source, 4)
        assert [b.inputs["x"].shape[0] for b in batches] == [4, 1]
        assert inputs["x"][:, 0, 0, 0].tolist() == [0, 0, 1, 1, 2]


def test_callable_errors(tmp_path: Path) -> None:
    _write_module(tmp_path)
    with pytest.raises(
        DataError, match="calib_data.py:broken' raised RuntimeError: dataset server down"
    ):
        open_data("calib_data.py:broken", base_dir=tmp_path)
    with pytest.raises(DataError, match="is a int; expected a dict of arrays"):
        open_data("calib_data.py:wrong", base_dir=tmp_path)
    with pytest.raises(DataError, match="has no attribute 'missing'"):
        open_data("calib_data.py:missing", base_dir=tmp_path)
    with pytest.raises(
        DataError, match="'no_such_data_pkg.mod:fn': cannot import module 'no_such_data_pkg.mod'"
    ):
        open_data("no_such_data_pkg.mod:fn")


def test_python_callable_object() -> None:
    source = open_data(lambda: [{"x": _images(2)}, {"x": _images(1)}], input_specs=[X])
    assert source.num_samples == 3


def test_data_config_relative_path(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    np.savez(tmp_path / "data" / "eval.npz", x=_images(4), labels=np.arange(4))
    cfg = DataConfig(path="data/eval.npz", limit=2)
    source = open_data_config(cfg, [X], tmp_path)
    assert source.num_samples == 2 and source.has_labels


def test_data_config_rejects_unknown_keys() -> None:
    with pytest.raises(ValidationError, match="extra"):
        DataConfig(path="a.npz", shuffle=True)
    with pytest.raises(ValidationError):
        DataConfig(path="a.npz", limit=0)


def test_kind_mismatch(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", _images(2))
    with pytest.raises(DataError, match="needs a folder"):
        open_data(tmp_path / "a.npy", kind="images")
