"""AdaRound weight rounding (nnship.quantize.adaround) on tiny real models through ONNX Runtime."""

import numpy as np
import onnx
from onnx import numpy_helper

from nnship.backends.onnxruntime.outputs import run_model
from nnship.quantize import make_config, quantize
from nnship.quantize.adaround import adaround, apply_rounding, find_layers
from nnship.sources import ArrayData

FAST = {"iterations": 300, "samples": 32, "rows": 2048, "batch_rows": 256}


def _int8_weights(model):
    return {
        i.name: numpy_helper.to_array(i)
        for i in model.graph.initializer
        if i.data_type == onnx.TensorProto.INT8 and len(i.dims) > 1
    }


def _mse(a, b):
    return float(((a.primary - b.primary) ** 2).mean())


def test_adaround_changes_only_integers_and_lowers_the_output_error(tmp_path, cnn_path, cnn_data):
    # per-tensor weights: on a model this small, weight rounding error is what shows
    source = ArrayData(cnn_data)
    base = {"method": "minmax", "per_channel": False}
    quantize(cnn_path, tmp_path / "near.onnx", make_config(base), calib_data=source)
    cfg = make_config(base, weight_rounding="adaround", adaround=FAST)
    res = quantize(cnn_path, tmp_path / "ada.onnx", cfg, calib_data=source)
    near, ada = onnx.load(str(tmp_path / "near.onnx")), onnx.load(str(tmp_path / "ada.onnx"))
    onnx.checker.check_model(ada, full_check=True)
    # same graph, same scales: only which integer each weight holds may change, by at most 1
    assert [n.op_type for n in near.graph.node] == [n.op_type for n in ada.graph.node]
    w_near, w_ada = _int8_weights(near), _int8_weights(ada)
    assert w_near.keys() == w_ada.keys()
    assert any((w_near[k] != w_ada[k]).any() for k in w_near)
    for k in w_near:
        assert np.abs(w_near[k].astype(int) - w_ada[k].astype(int)).max() <= 1
    scales = {i.name: numpy_helper.to_array(i) for i in near.graph.initializer if "scale" in i.name}
    for i in ada.graph.initializer:
        if i.name in scales:
            np.testing.assert_array_equal(numpy_helper.to_array(i), scales[i.name])
    record = res.details["weight_rounding"]
    assert record["report"]["layers_rounded"] >= 1 and record["seconds"] > 0
    assert [t["name"] for t in res.applied_transforms] == ["weight_rounding"]
    ref = run_model(onnx.load(str(cnn_path)), source)
    assert _mse(ref, run_model(ada, source)) < _mse(ref, run_model(near, source))


def test_every_kept_layer_beats_nearest_on_its_rows(tmp_path, cnn_path, cnn_data):
    from nnship.quantize.config import AdaRoundSettings
    from nnship.quantize.pipeline import preprocess

    source = ArrayData(cnn_data)
    quantize(cnn_path, tmp_path / "near.onnx", make_config(method="minmax"), calib_data=source)
    fmodel = preprocess(onnx.load(str(cnn_path)))
    qmodel = onnx.load(str(tmp_path / "near.onnx"))
    skipped: list = []
    layers = find_layers(fmodel, qmodel, skipped)
    assert {layer.op_type for layer in layers} == {"Conv", "Gemm"}
    assert any(layer.group > 1 for layer in layers)  # the depthwise conv
    out, learned, report = adaround(fmodel, qmodel, source, AdaRoundSettings(**FAST))
    assert report.layers and all(
        (layer.mse_adaround < layer.mse_nearest) == layer.kept for layer in report.layers
    )
    # a rebuilt model (as the fallback makes) gets the same learned integers back
    again = apply_rounding(onnx.load(str(tmp_path / "near.onnx")), learned)
    assert _int8_weights(again).keys() == _int8_weights(out).keys()
    for k, v in _int8_weights(out).items():
        np.testing.assert_array_equal(_int8_weights(again)[k], v)


def test_adaround_is_reproducible(tmp_path, cnn_path, cnn_data):
    source = ArrayData(cnn_data)
    cfg = make_config(method="minmax", weight_rounding="adaround", adaround=FAST)
    quantize(cnn_path, tmp_path / "a.onnx", cfg, calib_data=source)
    quantize(cnn_path, tmp_path / "b.onnx", cfg, calib_data=source)
    a, b = (
        _int8_weights(onnx.load(str(tmp_path / "a.onnx"))),
        _int8_weights(onnx.load(str(tmp_path / "b.onnx"))),
    )
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
