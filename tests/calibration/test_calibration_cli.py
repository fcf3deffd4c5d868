"""`nnship calibrate` end to end through the real command line entry point."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from calib_models import conv_chain

from nnship.calibration import CalibrationTable, read_tensorrt_cache
from nnship.cli.main import main


@pytest.fixture()
def model_and_data(tmp_path):
    model = tmp_path / "model.onnx"
    onnx.save(conv_chain(), str(model))
    data = tmp_path / "calib.npz"
    x = np.random.default_rng(0).normal(size=(40, 4, 8, 8)).astype(np.float32)
    np.savez(data, x=x)
    return model, data


def test_calibrate_writes_table_and_tensorrt_cache(model_and_data, tmp_path, capsys):
    model, data = model_and_data
    out, cache = tmp_path / "table.json", tmp_path / "calib.cache"
    code = main(["calibrate", str(model), "--data", str(data), "--method", "percentile",
                 "--percentile", "99.9", "-o", str(out), "--trt-cache", str(cache)])  # fmt: skip
    assert code == 0
    table = CalibrationTable.load(out)
    assert table.num_samples == 40 and set(table.tensors) >= {"x", "c1", "a1", "c2", "y"}
    stored = json.loads(out.read_text())["ranges"]
    assert stored["method"] == "percentile" and stored["params"]["percentile"] == 99.9
    assert stored["values"]["c1"]["method"] == "percentile"
    scales = read_tensorrt_cache(cache)
    assert scales["c1"] == pytest.approx(
        max(abs(stored["values"]["c1"]["lo"]), abs(stored["values"]["c1"]["hi"])) / 127, rel=1e-6
    )
    printed = capsys.readouterr().out
    assert "calibrated" in printed and "tighter than min/max" in printed


def test_mismatched_data_exits_2_naming_the_tensor(model_and_data, tmp_path, capsys):
    model, _ = model_and_data
    data = tmp_path / "bad.npz"
    np.savez(data, x=np.zeros((8, 3, 8, 8), np.float32))
    out = tmp_path / "table.json"
    assert main(["calibrate", str(model), "--data", str(data), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "'x'" in err and "3" in err
    assert not out.exists()


def test_unknown_method_is_a_usage_error(model_and_data, capsys):
    model, data = model_and_data
    with pytest.raises(SystemExit) as exc:
        main(["calibrate", str(model), "--data", str(data), "--method", "kl"])
    assert exc.value.code == 2
    assert "invalid choice: 'kl'" in capsys.readouterr().err


def test_bad_option_value_names_the_flag(model_and_data, tmp_path, capsys):
    model, data = model_and_data
    code = main(["calibrate", str(model), "--data", str(data), "--num-bins", "4",
                 "-o", str(tmp_path / "t.json")])  # fmt: skip
    assert code == 2
    assert "--num-bins" in capsys.readouterr().err


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit):
        main(["calibrate", "--help"])
    text = capsys.readouterr().out
    for flag in ("--data", "--method", "--percentile", "--num-bins", "--batch-size",
                 "--max-samples", "--trt-cache"):  # fmt: skip
        assert flag in text
