"""Foreign ONNX (another exporter, opset 11): converted before Q/DQ, verified, runs everywhere.

Regression for issue 9 point 5: per-channel Q/DQ written into an opset-11 graph gave
"Unrecognized attribute: axis for operator DequantizeLinear" in every runtime.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from nnship.core.errors import QuantizationError
from nnship.quantize import make_config, quantize
from nnship.quantize.opset import default_opset, upgrade_opset
from nnship.sources import ArrayData

RNG = np.random.default_rng(0)


def _init(name: str, *shape: int, scale: float = 0.3) -> onnx.TensorProto:
    return numpy_helper.from_array((RNG.standard_normal(shape) * scale).astype(np.float32), name)


def opset11_detector(batch: int | str = "N", ml_domain: bool = False) -> onnx.ModelProto:
    """A tiny text-detector-like graph as an old exporter writes it: opset 11, dynamic H/W,
    Conv -> HardSigmoid -> Resize (roi/scales inputs, opset-11 form) -> ConvTranspose -> Erf."""
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("HardSigmoid", ["c1"], ["h1"], alpha=0.2, beta=0.5, name="hsig"),
        helper.make_node("Mul", ["c1", "h1"], ["m1"], name="hswish"),
        helper.make_node("Conv", ["m1", "w2", "b2"], ["c2"], strides=[2, 2], name="conv2"),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Resize", ["r2", "roi", "scales"], ["up"], mode="nearest", name="resize"),
        helper.make_node(
            "ConvTranspose", ["up", "wt", "bt"], ["ct"], strides=[2, 2], name="deconv"
        ),
        helper.make_node("Erf", ["ct"], ["e"], name="erf"),
        helper.make_node("Conv", ["e", "w3"], ["y"], name="head"),
    ]
    inits = [
        _init("w1", 8, 3, 3, 3),
        _init("b1", 8),
        _init("w2", 8, 8, 1, 1),
        _init("b2", 8),
        numpy_helper.from_array(np.zeros(0, np.float32), "roi"),
        numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
        _init("wt", 8, 4, 2, 2),
        _init("bt", 4),
        _init("w3", 1, 4, 1, 1),
    ]
    graph = helper.make_graph(
        nodes,
        "det",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, "H", "W"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 1, None, None])],
        inits,
    )
    opsets = [helper.make_opsetid("", 11)]
    if ml_domain:
        opsets.append(helper.make_opsetid("ai.onnx.ml", 2))
    model = helper.make_model(graph, opset_imports=opsets, producer_name="other-exporter")
    model.ir_version = 6
    onnx.checker.check_model(model, full_check=True)
    return model


def _data(n: int, hw: int = 16) -> ArrayData:
    return ArrayData({"x": RNG.uniform(0, 1, (n, 3, hw, hw)).astype(np.float32)})


def _save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path


def _ort(path: Path, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[
        0
    ]


def test_upgrade_converts_opset11_without_changing_outputs():
    model = opset11_detector()
    converted, record = upgrade_opset(model, data=_data(4))
    assert default_opset(model) == 11  # input untouched
    assert default_opset(converted) == 18
    assert record.converted and record.from_opset == 11 and record.to_opset == 18
    assert record.verified_samples == 4 and record.identical is True
    assert record.max_abs_diff == 0.0


def test_upgrade_leaves_modern_models_alone():
    model = helper.make_model(
        helper.make_graph(
            [helper.make_node("Relu", ["x"], ["y"])],
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        ),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    out, record = upgrade_opset(model)
    assert out is model and not record.converted


@pytest.mark.parametrize("per_channel", [True, False])
def test_int8_of_opset11_model_runs_on_ort_and_openvino(tmp_path, per_channel):
    src = _save(opset11_detector(ml_domain=True), tmp_path / "det11.onnx")
    cfg = make_config(method="minmax", per_channel=per_channel)
    result = quantize(src, tmp_path / "det.int8.onnx", cfg, calib_data=_data(16))
    qmodel = onnx.load(str(result.path))
    onnx.checker.check_model(qmodel, full_check=True)
    assert default_opset(qmodel) >= 13
    versions = {o.domain: o.version for o in qmodel.opset_import}
    assert versions.get("ai.onnx.ml") == 2  # other domains keep their version
    conv = result.details["opset_conversion"]
    assert conv["from_opset"] == 11 and conv["to_opset"] == 18 and conv["identical"]
    assert any(n.op_type == "DequantizeLinear" for n in qmodel.graph.node)
    x = RNG.uniform(0, 1, (1, 3, 24, 20)).astype(np.float32)  # another H and W: still dynamic
    ref = _ort(src, x)
    got = _ort(result.path, x)
    assert got.shape == ref.shape
    assert np.corrcoef(ref.ravel(), got.ravel())[0, 1] > 0.95
    if importlib.util.find_spec("openvino") is None:
        pytest.skip("openvino not installed")
    import openvino as ov

    compiled = ov.Core().compile_model(str(result.path), "CPU")
    ov_out = compiled({"x": x})[0]
    assert np.corrcoef(ref.ravel(), ov_out.ravel())[0, 1] > 0.95


def test_dynamic_int8_of_opset11_model_loads(tmp_path):
    src = _save(opset11_detector(), tmp_path / "det11.onnx")
    result = quantize(
        src, tmp_path / "det.dyn.onnx", make_config(precisions=["dynamic-int8"]), calib_data=None
    )
    assert default_opset(onnx.load(str(result.path))) == 18
    _ort(result.path, RNG.uniform(0, 1, (1, 3, 16, 16)).astype(np.float32))


def test_fixed_batch_of_one_takes_many_samples(tmp_path):
    src = _save(opset11_detector(batch=1), tmp_path / "det11_b1.onnx")
    result = quantize(src, tmp_path / "q.onnx", make_config(method="minmax"), calib_data=_data(9))
    assert result.details["opset_conversion"]["verified_samples"] == 4
    assert any(n.op_type == "QuantizeLinear" for n in onnx.load(str(result.path)).graph.node)


def test_failed_conversion_is_a_clear_error(tmp_path, monkeypatch):
    from onnx import version_converter

    def broken(model, target):  # noqa: ANN001, ANN202
        raise RuntimeError("No Adapter For Resize")

    monkeypatch.setattr(version_converter, "convert_version", broken)
    src = _save(opset11_detector(), tmp_path / "det11.onnx")
    with pytest.raises(QuantizationError, match=r"det11\.onnx.*opset 11.*No Adapter For Resize"):
        quantize(src, tmp_path / "q.onnx", make_config(method="minmax"), calib_data=_data(4))
    assert not (tmp_path / "q.onnx").exists()


def test_conversion_that_changes_outputs_is_refused(monkeypatch):
    from onnx import version_converter

    real = version_converter.convert_version

    def changes_weights(model, target):  # noqa: ANN001, ANN202
        out = real(model, target)
        w = next(i for i in out.graph.initializer if i.name == "w3")
        w.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(w) * 2, "w3"))
        return out

    monkeypatch.setattr(version_converter, "convert_version", changes_weights)
    with pytest.raises(QuantizationError, match="changed the model's outputs.*output 'y'"):
        upgrade_opset(opset11_detector(), data=_data(2))


DDDDOCR = importlib.util.find_spec("ddddocr")


@pytest.mark.slow
@pytest.mark.skipif(DDDDOCR is None, reason="ddddocr (real foreign ONNX models) not installed")
def test_real_ddddocr_detector_quantizes_and_runs_everywhere(tmp_path):
    folder = Path(DDDDOCR.origin).parent  # type: ignore[union-attr,arg-type]
    src = folder / "common_det.onnx"
    if not src.is_file():
        pytest.skip("this ddddocr version ships no common_det.onnx")
    model = onnx.load(str(src))
    shape = [d.dim_value or 1 for d in model.graph.input[0].type.tensor_type.shape.dim]
    name = model.graph.input[0].name
    calib = ArrayData({name: RNG.uniform(0, 255, (8, *shape[1:])).astype(np.float32)})
    cfg = make_config(method="minmax", calibration={"max_samples": 8})
    result = quantize(src, tmp_path / "det.int8.onnx", cfg, calib_data=calib)
    conv = result.details.get("opset_conversion")
    if default_opset(model) < 13:
        assert conv is not None and conv["identical"]
    x = RNG.uniform(0, 255, (1, *shape[1:])).astype(np.float32)
    ref = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, {name: x})
    got = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"]).run(
        None, {name: x}
    )
    assert got[0].shape == ref[0].shape
    import openvino as ov

    ov_out = ov.Core().compile_model(str(result.path), "CPU")({name: x})[0]
    assert ov_out.shape == ref[0].shape


def test_cli_quantizes_an_opset11_model_and_says_so(tmp_path, run_cli):
    src = _save(opset11_detector(), tmp_path / "det11.onnx")
    np.save(tmp_path / "calib.npy", RNG.uniform(0, 1, (8, 3, 16, 16)).astype(np.float32))
    out = tmp_path / "det.int8.onnx"
    proc = run_cli(
        "quantize", src, "--calib", tmp_path / "calib.npy", "--method", "minmax", "-o", out
    )
    assert proc.returncode == 0, proc.stderr
    assert "opset 11 -> 18 (onnx.version_converter); outputs bit-identical" in proc.stdout
    _ort(out, RNG.uniform(0, 1, (1, 3, 16, 16)).astype(np.float32))


def test_integer_shape_arithmetic_is_never_calibrated(tmp_path):
    # a foreign graph computing a shape: Mul of two Gathers of a Shape (int64), beside a float
    # Conv -> Mul; the onnxruntime profile quantizes Mul, but never the int64 one
    model = onnx.parser.parse_model(
        """
        <ir_version: 8, opset_import: ["" : 18]>
        g (float[N, 3, 16, 16] x) => (float[N, 4, 16, 16] y, int64[2] shp) {
            c = Conv <pads = [1, 1, 1, 1]> (x, w)
            y = Mul (c, c)
            s = Shape (x)
            i0 = Constant <value = int64 {2}> ()
            i1 = Constant <value = int64 {3}> ()
            h = Gather <axis = 0> (s, i0)
            v = Gather <axis = 0> (s, i1)
            hw = Mul (h, v)
            a = Unsqueeze (hw, zero)
            shp = Concat <axis = 0> (a, a)
        }
        """
    )
    model.graph.initializer.extend([_init("w", 4, 3, 3, 3), numpy_helper.from_array(
        np.array([0], dtype=np.int64), "zero")])  # fmt: skip
    src = _save(model, tmp_path / "shape.onnx")
    res = quantize(src, tmp_path / "q.onnx", make_config(profile="onnxruntime"),
                   calib_data=_data(16))  # fmt: skip
    assert res.quantized_nodes  # the float Conv -> Mul path is quantized
    q = onnx.load(str(tmp_path / "q.onnx"))
    quantized_inputs = {n.input[0] for n in q.graph.node if n.op_type == "QuantizeLinear"}
    assert not quantized_inputs & {"s", "h", "v", "hw"}
    x = np.random.default_rng(1).standard_normal((2, 3, 16, 16)).astype(np.float32)
    out = ort.InferenceSession(str(tmp_path / "q.onnx")).run(None, {"x": x})
    assert out[1].tolist() == [256, 256]
