"""The auto/on/off decisions around nnship.calibration's transforms.

The transforms are replaced by an exact identity (a float-equivalent transform that changes
nothing) so the decision logic is tested on its own; the transforms themselves are tested in
tests/calibration.
"""

import pytest

from nnship.core.errors import QuantizationError
from nnship.quantize import make_config, quantize, transforms
from nnship.sources import ArrayData


@pytest.fixture()
def identity_transforms(monkeypatch):
    calls = []

    def equalize(model):
        calls.append("equalization")
        return model, {"pairs": 0}

    def smooth(model, table, alpha=0.5):
        calls.append("smoothing")
        return model, {"alpha": alpha}

    funcs = {"cross_layer_equalize": equalize, "smooth_activations": smooth}
    monkeypatch.setattr(transforms, "_load", lambda name: funcs[name])
    return calls


def test_on_applies_equalization(identity_transforms, cnn_path, cnn_data, tmp_path):
    data = ArrayData(cnn_data)
    cfg = make_config(equalization="on", smoothing="off", bias_correction="off")
    res = quantize(cnn_path, tmp_path / "q.onnx", cfg, calib_data=data, eval_data=data)
    assert identity_transforms == ["equalization"]
    assert [t["name"] for t in res.applied_transforms] == ["equalization"]


def test_auto_keeps_a_transform_only_when_it_helps(
    identity_transforms, cnn_path, cnn_data, tmp_path
):
    data = ArrayData(cnn_data)
    cfg = make_config(bias_correction="off")  # tested in test_bias_correction_step.py
    res = quantize(cnn_path, tmp_path / "q.onnx", cfg, calib_data=data, eval_data=data)
    assert identity_transforms == ["equalization"]  # the CNN has a depthwise conv, no MatMul
    assert res.applied_transforms == []
    considered = {t["name"]: t for t in res.details["transforms_considered"]}
    assert considered["equalization"]["decision"].startswith("not applied")
    assert considered["smoothing"]["skipped"] == "no weight MatMul"


def test_auto_without_any_held_out_data_is_skipped(
    identity_transforms, cnn_path, cnn_data, tmp_path
):
    # a fixed method holds no calibration samples out, and there is no evaluation data
    cfg = make_config(method="minmax")
    res = quantize(cnn_path, tmp_path / "q.onnx", cfg, calib_data=ArrayData(cnn_data))
    assert identity_transforms == []
    assert "evaluation data" in res.details["transforms_considered"][0]["skipped"]


def test_auto_without_eval_data_is_judged_on_held_out_calibration_samples(
    identity_transforms, cnn_path, cnn_data, tmp_path
):
    cfg = make_config(bias_correction="off")
    res = quantize(cnn_path, tmp_path / "q.onnx", cfg, calib_data=ArrayData(cnn_data))
    assert identity_transforms == ["equalization"]
    assert "calibration data" in res.details["transforms_judged_on"]
    considered = res.details["transforms_considered"][0]
    assert "skipped" not in considered and considered["metrics_without"] is not None


def test_on_without_the_transform_available_is_an_error(monkeypatch, cnn_path, cnn_data, tmp_path):
    def missing(name):
        raise QuantizationError(f"nnship.calibration.{name} is not available")

    monkeypatch.setattr(transforms, "_load", missing)
    data = ArrayData(cnn_data)
    with pytest.raises(QuantizationError, match="equalization=on cannot run"):
        quantize(cnn_path, tmp_path / "q.onnx", make_config(equalization="on"),
                 calib_data=data, eval_data=data)  # fmt: skip
    assert not (tmp_path / "q.onnx").exists()
