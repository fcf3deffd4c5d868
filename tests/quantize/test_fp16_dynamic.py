import numpy as np
import onnx
import onnxruntime as ort
import pytest

from nnship.quantize import make_config, quantize
from nnship.sources import ArrayData


def _elem(value_info):
    return value_info.type.tensor_type.elem_type


def test_fp16_keeps_float32_io_and_matches(cnn_path, cnn_data, tmp_path):
    out = tmp_path / "m.fp16.onnx"
    data = ArrayData(cnn_data)
    res = quantize(cnn_path, out, make_config(precisions=["fp16"]), eval_data=data)
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    assert _elem(model.graph.input[0]) == onnx.TensorProto.FLOAT
    assert _elem(model.graph.output[0]) == onnx.TensorProto.FLOAT
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in model.graph.initializer)
    assert res.precision == "fp16" and res.metrics["cosine"] > 0.999


def test_fp16_io_can_be_float16(cnn_path, tmp_path):
    out = tmp_path / "m.fp16.onnx"
    quantize(cnn_path, out, make_config(precisions=["fp16"], keep_io_types=False))
    assert _elem(onnx.load(str(out)).graph.input[0]) == onnx.TensorProto.FLOAT16


def test_fp16_encoder_survives_the_float32_min_mask(encoder_path, encoder_data, tmp_path):
    out = tmp_path / "e.fp16.onnx"
    res = quantize(
        encoder_path, out, make_config(precisions=["fp16"]), eval_data=ArrayData(encoder_data)
    )
    assert res.metrics["cosine"] > 0.999  # the -3.4e38 constant is clamped, not inf/NaN


def test_fp16_user_exclusion_is_reported(cnn_path, tmp_path):
    res = quantize(
        cnn_path,
        tmp_path / "m.onnx",
        make_config(precisions=["fp16"], exclude={"op_types": ["Gemm"]}),
    )
    assert {n.op_type: n.reason for n in res.float_nodes}["Gemm"] == (
        "excluded by user (op type Gemm)"
    )


def test_dynamic_int8_quantizes_weight_matmuls_only(encoder_path, encoder_data, tmp_path):
    out = tmp_path / "e.dyn.onnx"
    data = ArrayData(encoder_data)
    res = quantize(encoder_path, out, make_config(precisions=["dynamic-int8"]), eval_data=data)
    ops = [n.op_type for n in onnx.load(str(out)).graph.node]
    assert "MatMulInteger" in ops and "DynamicQuantizeLinear" in ops
    reasons = {n.reason for n in res.float_nodes}
    assert "MatMul with non-constant B" in reasons  # attention scores and context
    assert len(res.quantized_nodes) == 6  # q, k, v, out, mlp x2
    assert res.metrics["cosine"] > 0.99


def test_dynamic_gemm_stays_float_with_reason(cnn_path, tmp_path):
    res = quantize(cnn_path, tmp_path / "d.onnx", make_config(precisions=["dynamic-int8"]))
    assert {n.op_type: n.reason for n in res.float_nodes}["Gemm"].startswith("Gemm: ONNX Runtime")
    assert res.quantized_nodes == []


def test_budget_missed_by_fp16_is_an_error_and_writes_nothing(cnn_path, cnn_data, tmp_path):
    from nnship.core.errors import QuantizationError

    with pytest.raises(QuantizationError, match="fp16 misses the accuracy budget"):
        quantize(
            cnn_path, tmp_path / "m.onnx", make_config(precisions=["fp16"], min_cosine=1.0),
            eval_data=ArrayData(cnn_data),
        )  # fmt: skip
    assert not (tmp_path / "m.onnx").exists()


def test_unknown_precision(cnn_path, tmp_path):
    from nnship.core.errors import QuantizationError

    with pytest.raises(QuantizationError, match="int4"):
        quantize(cnn_path, tmp_path / "m.onnx", make_config(), precision="int4")


def test_outputs_run_in_onnxruntime(cnn_path, cnn_data, tmp_path):
    out = tmp_path / "m.fp16.onnx"
    quantize(cnn_path, out, make_config(precisions=["fp16"]))
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    y = sess.run(None, {"x": cnn_data["x"][:2]})[0]
    assert y.dtype == np.float32 and y.shape == (2, 4)
