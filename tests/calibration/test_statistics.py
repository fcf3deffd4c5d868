"""collect_statistics: exact min/max/counts through a real ONNX Runtime, bounded exposure by
segments, and clear errors for bad inputs."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import pytest
from calib_models import conv_chain, make_model, relu_scale
from onnx import TensorProto, helper, numpy_helper

from nnship.calibration import collect_statistics
from nnship.core import DataSource, LabeledBatch
from nnship.core.errors import CalibrationError, DataError, OnnxModelError
from nnship.sources import ArrayData


def _data(n: int = 40, seed: int = 0) -> tuple[np.ndarray, ArrayData]:
    x = np.random.default_rng(seed).normal(size=(n, 4)).astype(np.float32)
    return x, ArrayData({"x": x})


def test_statistics_match_numpy_exactly(tmp_path):
    path = tmp_path / "m.onnx"
    relu_scale(path)
    x, data = _data()
    table = collect_statistics(path, data, batch_size=7)
    assert set(table.tensors) == {"x", "r", "y"}  # the Mul constant is not an activation
    y = 2 * np.maximum(x, 0)
    for name, ref in (("x", x), ("r", np.maximum(x, 0)), ("y", y)):
        stats = table[name]
        assert (stats.min, stats.max) == (float(ref.min()), float(ref.max()))
        assert stats.count == ref.size == stats.hist_counts.sum()
    assert table.num_samples == 40 and len(table.model_sha256) == 64
    assert table.data_fingerprint == data.fingerprint()


def test_max_samples_and_tensors_are_respected(tmp_path):
    path = tmp_path / "m.onnx"
    relu_scale(path)
    x, data = _data()
    table = collect_statistics(path, data, tensors=["r"], max_samples=10, min_samples=1)
    assert list(table.tensors) == ["r"]
    assert table.num_samples == 10 and table["r"].count == 40
    assert table["r"].max == float(np.maximum(x[:10], 0).max())


def test_segments_bound_exposure_without_changing_statistics():
    model = conv_chain()
    x = np.random.default_rng(1).normal(size=(12, 4, 8, 8)).astype(np.float32)
    data = ArrayData({"x": x})
    whole = collect_statistics(model, data, batch_size=4, min_samples=1)
    # 8 KiB per run forces one segment per node; every node still runs once.
    pieces = collect_statistics(model, data, batch_size=4, min_samples=1, max_exposed_mb=1 / 128)
    assert whole.to_dict() == pieces.to_dict()


def test_matmul_inputs_get_per_channel_abs_max():
    w = numpy_helper.from_array(np.eye(3, 2, dtype=np.float32), "w")
    model = make_model(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
        [w],
    )
    x = np.array([[1, -5, 0], [-2, 1, 0.5]], dtype=np.float32)
    table = collect_statistics(model, ArrayData({"x": x}), min_samples=1)
    np.testing.assert_array_equal(table["x"].channel_abs_max, [2, 5, 0.5])
    assert table["y"].channel_abs_max is None


def test_mismatched_data_names_the_tensor_and_both_shapes(tmp_path):
    path = tmp_path / "m.onnx"
    relu_scale(path)
    bad = ArrayData({"x": np.zeros((8, 5), np.float32)})
    with pytest.raises(DataError, match=r"'x'.*\[N, 4\].*\(8, 5\)"):
        collect_statistics(path, bad)


def test_wrong_input_name_is_reported(tmp_path):
    path = tmp_path / "m.onnx"
    relu_scale(path)
    with pytest.raises(DataError, match=r"expects \['x'\].*'image'"):
        collect_statistics(path, ArrayData({"image": np.zeros((8, 4), np.float32)}))


class _NanSource(DataSource):
    """A source that does not validate its arrays (as a user's callable might not)."""

    num_samples = 4
    input_names = ["x"]

    def iter_batches(self, batch_size: int = 1) -> Iterator[LabeledBatch]:
        x = np.ones((4, 4), np.float32)
        x[1, 2] = np.nan
        yield LabeledBatch({"x": x})


def test_nan_in_the_data_is_rejected(tmp_path):
    path = tmp_path / "m.onnx"
    relu_scale(path)
    with pytest.raises(DataError, match="'x'.*1 NaN/Inf"):
        collect_statistics(path, _NanSource())


def test_inf_produced_inside_the_model_is_counted_and_flagged(caplog):
    model = make_model(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Log", ["r"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
    )
    x, data = _data()
    with caplog.at_level(logging.WARNING):
        table = collect_statistics(model, data)
    zeros = int((x <= 0).sum())
    assert table["y"].num_nonfinite == zeros and table["y"].count == x.size - zeros
    assert f"{zeros} NaN/Inf" in table.degenerate_tensors()["y"]
    assert "'y' produced" in caplog.text
    assert "y" not in table.ranges("minmax")


def test_constant_tensor_is_flagged_zero_range(tmp_path):
    path = tmp_path / "m.onnx"
    relu_scale(path)
    table = collect_statistics(path, ArrayData({"x": -np.ones((40, 4), np.float32)}))
    assert "zero range" in table.degenerate_tensors()["r"]


def test_few_samples_warn_with_the_number(tmp_path, caplog):
    path = tmp_path / "m.onnx"
    relu_scale(path)
    _, data = _data(n=5)
    with caplog.at_level(logging.WARNING):
        collect_statistics(path, data)
    assert "only 5 calibration sample(s)" in caplog.text


def test_already_quantized_model_is_refused():
    scale = numpy_helper.from_array(np.array(0.1, np.float32), "s")
    model = make_model(
        [
            helper.make_node("QuantizeLinear", ["x", "s"], ["q"]),
            helper.make_node("DequantizeLinear", ["q", "s"], ["y"]),
        ],  # fmt: skip
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        [scale],
    )
    with pytest.raises(CalibrationError, match="already quantized"):
        collect_statistics(model, _data()[1])


def test_unknown_tensor_is_named(tmp_path):
    path = tmp_path / "m.onnx"
    relu_scale(path)
    with pytest.raises(CalibrationError, match="'two'"):
        collect_statistics(path, _data()[1], tensors=["r", "two"])


def test_fixed_batch_dimension_wins_and_partial_batches_are_skipped(caplog):
    model = relu_scale(batch=4)
    _, data = _data(n=10)
    with caplog.at_level(logging.WARNING):
        table = collect_statistics(model, data, batch_size=8, min_samples=1)
    assert table.num_samples == 8
    assert "partial batch of 2" in caplog.text


def test_missing_or_truncated_model_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "cut.onnx"
    bad.write_bytes(relu_scale().SerializeToString()[:20])
    with pytest.raises(OnnxModelError, match="cut.onnx"):
        collect_statistics(bad, _data()[1])
