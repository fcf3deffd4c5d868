"""Fitting arrays to input specs: batch axis, the friendly casts, and the errors."""

from __future__ import annotations

import numpy as np
import pytest

from nnship.core import TensorSpec
from nnship.core.errors import DataError
from nnship.sources.conform import check_header, conform_array, conform_batch

IMAGE = TensorSpec("x", (1, 3, 4, 4))
IDS = TensorSpec("ids", ("batch", 6), "int64")


def test_float64_becomes_float32() -> None:
    out = conform_array(np.full((2, 3, 4, 4), 0.1), IMAGE)
    assert out.dtype == np.float32 and out[0, 0, 0, 0] == np.float32(0.1)


def test_int32_becomes_int64_and_back_when_values_fit() -> None:
    assert conform_array(np.arange(12, dtype=np.int32).reshape(2, 6), IDS).dtype == np.int64
    narrow = TensorSpec("ids", ("batch", 2), "int32")
    assert conform_array(np.array([[1, 2]], np.int64), narrow).dtype == np.int32


def test_int64_out_of_int32_range_is_an_error() -> None:
    narrow = TensorSpec("ids", ("batch", 2), "int32")
    with pytest.raises(DataError, match=r"'ids'.*values 0\.\.4294967296 \(int64\) do not fit"):
        conform_array(np.array([[0, 2**32]], np.int64), narrow)


def test_float_data_for_int_input_is_not_cast() -> None:
    with pytest.raises(DataError, match="'ids'.*expected dtype int64, got float32"):
        conform_batch({"ids": np.zeros((2, 6), np.float32)}, [IDS])


def test_single_sample_gets_a_batch_axis() -> None:
    assert conform_array(np.zeros((3, 4, 4), np.float32), IMAGE).shape == (1, 3, 4, 4)


def test_batch_axis_is_free_but_other_dims_are_checked() -> None:
    assert conform_batch({"x": np.zeros((7, 3, 4, 4), np.float32)}, [IMAGE])["x"].shape[0] == 7
    with pytest.raises(
        DataError, match=r"'x'.*expected shape \[batch, 3, 4, 4\], got \(7, 1, 4, 4\)"
    ):
        conform_batch({"x": np.zeros((7, 1, 4, 4), np.float32)}, [IMAGE])


def test_rank_mismatch_names_both_shapes() -> None:
    with pytest.raises(
        DataError, match=r"'x'.*rank 4 shape \[batch, 3, 4, 4\], got rank 2 shape \(7, 48\)"
    ):
        conform_batch({"x": np.zeros((7, 48), np.float32)}, [IMAGE])


def test_names_mismatch() -> None:
    with pytest.raises(DataError, match=r"missing \['x'\]; unexpected \['image'\]"):
        conform_batch({"image": np.zeros((1, 3, 4, 4), np.float32)}, [IMAGE])


def test_nan_rejected() -> None:
    data = np.zeros((2, 3, 4, 4), np.float32)
    data[1, 2, 3, 3] = np.nan
    with pytest.raises(DataError, match="'x'.*1 NaN/Inf"):
        conform_batch({"x": data}, [IMAGE])


def test_check_header_counts_samples_without_data() -> None:
    assert check_header(IMAGE, (1000, 3, 4, 4), np.dtype("float64"), where="f") == 1000
    assert check_header(IMAGE, (3, 4, 4), np.dtype("float32"), where="f") == 1
    with pytest.raises(DataError, match="in f: expected dtype float32, got int64"):
        check_header(IMAGE, (10, 3, 4, 4), np.dtype("int64"), where="f")
