import json

import numpy as np
import onnx
import pytest

from nnship.cli.main import main


@pytest.fixture()
def files(tmp_path, cnn_data):
    np.save(tmp_path / "calib.npy", cnn_data["x"][:40])
    np.savez(tmp_path / "eval.npz", x=cnn_data["x"][8:40], labels=np.zeros(32, np.int64))
    return tmp_path


def test_quantize_int8_with_eval_and_json(cnn_path, files, capsys):
    out, report = files / "m.int8.onnx", files / "r.json"
    rc = main(["quantize", str(cnn_path), "--calib", str(files / "calib.npy"), "--eval",
               str(files / "eval.npz"), "-o", str(out), "--json", str(report)])  # fmt: skip
    assert rc == 0
    onnx.checker.check_model(onnx.load(str(out)))
    data = json.loads(report.read_text())
    assert data["precision"] == "int8" and data["profile"] == "onnxruntime"
    assert data["metrics"]["cosine"] > 0.99
    text = capsys.readouterr().out
    assert "float " in text and "ReduceMean" in text


def test_quantize_tensorrt_from_a_calibration_table(cnn_path, files):
    from nnship.calibration import calibrate
    from nnship.sources import ArrayData

    table = files / "table.json"
    calibrate(cnn_path, ArrayData({"x": np.load(files / "calib.npy")}), table)
    out = files / "m.trt.onnx"
    assert main(["quantize", str(cnn_path), "--calib-table", str(table), "--profile", "tensorrt",
                 "-o", str(out)]) == 0  # fmt: skip
    assert out.exists()


def test_quantize_fp16_and_dynamic(cnn_path, encoder_path, files):
    assert (
        main(["quantize", str(cnn_path), "--precision", "fp16", "-o", str(files / "a.onnx")]) == 0
    )
    assert main(["quantize", str(encoder_path), "--precision", "dynamic-int8",
                 "-o", str(files / "b.onnx")]) == 0  # fmt: skip


def test_errors_exit_2_and_write_nothing(cnn_path, files, capsys):
    out = files / "m.onnx"
    assert main(["quantize", str(cnn_path), "-o", str(out)]) == 2
    assert "--calib" in capsys.readouterr().err
    assert not out.exists()


def test_unknown_method_is_a_usage_error(cnn_path, files):
    with pytest.raises(SystemExit) as exc:
        main(["quantize", str(cnn_path), "--method", "kl", "-o", str(files / "m.onnx")])
    assert exc.value.code == 2
