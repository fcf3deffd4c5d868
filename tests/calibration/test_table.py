"""CalibrationTable: JSON round trip, clear load errors, degenerate tensors, TensorRT cache."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from test_methods import stats_of

from nnship.calibration import CalibrationTable, read_tensorrt_cache, write_tensorrt_cache
from nnship.calibration.methods import TensorRange
from nnship.core.errors import CalibrationError


@pytest.fixture()
def table() -> CalibrationTable:
    rng = np.random.default_rng(0)
    normal = stats_of(rng.normal(size=20_000), name="normal")
    normal.channel_axis, normal.channel_abs_max = -1, np.array([1.0, 2.5])
    mask = stats_of(np.array([0.0] * 50 + [np.finfo(np.float32).min] * 5), name="mask_bias")
    const = stats_of(np.zeros(64), name="zeros")
    nan = stats_of(rng.normal(size=100), name="with_inf")
    nan.num_nonfinite = 3
    tensors = {s.name: s for s in (normal, mask, const, nan)}
    return CalibrationTable(tensors, "abc", "def", num_samples=40, num_bins=2048)


def test_json_round_trip_keeps_every_statistic(table, tmp_path):
    path = table.save(tmp_path / "t.json")
    loaded = CalibrationTable.load(path)
    assert loaded.to_dict() == table.to_dict()
    for method in ("minmax", "percentile", "entropy", "mse"):
        assert loaded.ranges(method) == table.ranges(method)
    np.testing.assert_array_equal(loaded["normal"].channel_abs_max, [1.0, 2.5])


def test_degenerate_tensors_name_the_reason(table):
    reasons = table.degenerate_tensors()
    assert set(reasons) == {"mask_bias", "zeros", "with_inf"}
    assert "attention-mask" in reasons["mask_bias"]
    assert "constant" in reasons["zeros"] and "zero range" in reasons["zeros"]
    assert "3 NaN/Inf" in reasons["with_inf"]


def test_ranges_leave_degenerate_tensors_out_unless_asked(table):
    assert set(table.ranges("entropy")) == {"normal"}
    assert set(table.ranges("minmax", include_degenerate=True)) == set(table.tensors)


def test_unknown_method_is_an_error(table):
    with pytest.raises(CalibrationError, match="Unknown calibration method 'best'"):
        table.ranges("best")


def test_missing_tensor_names_it(table):
    with pytest.raises(CalibrationError, match="'nope'"):
        table["nope"]


def test_load_rejects_corrupt_json(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"schema": "nnship.calib')
    with pytest.raises(CalibrationError, match=r"bad\.json.*corrupt"):
        CalibrationTable.load(path)


def test_load_rejects_another_schema_version(table, tmp_path):
    data = table.to_dict()
    data["schema"] = "nnship.calibration-table/0"
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    with pytest.raises(CalibrationError, match="calibration-table/0.*another nnship version"):
        CalibrationTable.load(path)


def test_load_rejects_missing_fields(table, tmp_path):
    data = table.to_dict()
    del data["tensors"]["normal"]["hist_index"]
    path = tmp_path / "cut.json"
    path.write_text(json.dumps(data))
    with pytest.raises(CalibrationError, match="cut.json.*corrupt.*hist_index"):
        CalibrationTable.load(path)


def test_load_of_a_missing_file_names_it(tmp_path):
    with pytest.raises(CalibrationError, match="nowhere.json.*does not exist"):
        CalibrationTable.load(tmp_path / "nowhere.json")


def test_tensorrt_cache_is_header_plus_big_endian_hex_scales(tmp_path):
    path = write_tensorrt_cache(
        tmp_path / "calib.cache",
        {"b": TensorRange(-127.0, 100.0), "a": (0.0, 2.54)},
        trt_version="8601",
    )
    lines = path.read_text().splitlines()
    assert lines[0] == "TRT-8601-EntropyCalibration2"
    assert lines[1] == f"a: {struct.pack('>f', 0.02).hex()}"
    assert lines[2] == "b: 3f800000"  # amax 127 -> scale 1.0
    assert read_tensorrt_cache(path) == pytest.approx({"a": 0.02, "b": 1.0})


def test_table_writes_its_ranges_as_a_cache(table, tmp_path):
    ranges = table.ranges("entropy")
    path = table.write_tensorrt_cache(tmp_path / "c.cache", ranges)
    scales = read_tensorrt_cache(path)
    assert scales["normal"] == pytest.approx(ranges["normal"].abs_max / 127, rel=1e-6)


def test_cache_rejects_non_finite_ranges(tmp_path):
    with pytest.raises(CalibrationError, match="'t'.*non-finite"):
        write_tensorrt_cache(tmp_path / "c.cache", {"t": (0.0, float("inf"))})
    assert not (tmp_path / "c.cache").exists()


def test_reading_a_malformed_cache_names_the_line(tmp_path):
    path = tmp_path / "bad.cache"
    path.write_text("TRT-8601-EntropyCalibration2\nx: 3f800000\ny 12\n")
    with pytest.raises(CalibrationError, match="line 3"):
        read_tensorrt_cache(path)
