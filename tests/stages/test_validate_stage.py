"""What the validation stage adds to an artifact's row from the quantize stage's result."""

from __future__ import annotations

from pathlib import Path

from nnship.quantize.result import FloatNode, QuantizeResult
from nnship.stages.quantize import QuantizedModel
from nnship.stages.validate import MAX_FLOAT_NODE_NOTES, row_annotation


def _int8_result() -> QuantizeResult:
    return QuantizeResult(
        Path("model.int8.onnx"),
        "int8",
        "onnxruntime",
        "minmax",
        float_nodes=[
            FloatNode(f"n{i}", "Relu", "no Q/DQ") for i in range(MAX_FLOAT_NODE_NOTES + 2)
        ],
        reverted=[{"node": "conv1", "sensitivity": 0.5}],
        details={
            "opset_conversion": {"summary": "opset 11 -> 13"},
            "subnormals": {"summary": "no subnormal float weights"},
        },
    )


def test_an_int8_row_carries_the_quantizer_result_and_its_decisions_as_notes():
    result = _int8_result()
    annotation = row_annotation(QuantizedModel(result.path, result))
    assert annotation is not None
    assert annotation.extra == {"quantize": result.to_dict()}
    assert annotation.notes == (
        *(f"kept in float: n{i} (Relu): no Q/DQ" for i in range(MAX_FLOAT_NODE_NOTES)),
        "... and 2 more float nodes",
        "reverted to float by the accuracy fallback: conv1",
        "quantize: opset 11 -> 13",
    )


def test_a_restored_result_annotates_the_row_as_the_fresh_one():
    result = _int8_result()
    fresh = QuantizedModel(result.path, result)
    assert row_annotation(QuantizedModel.from_dict(fresh.to_dict())) == row_annotation(fresh)


def test_nncf_int8_says_so_and_a_float_onnx_adds_nothing():
    nncf = row_annotation(QuantizedModel(Path("model.fp32.onnx"), nncf=True))
    assert nncf is not None and nncf.extra == {"quantize": {"int8_mode": "nncf"}}
    assert nncf.notes == ("INT8 made by NNCF from the float model (OpenVINO int8_mode nncf)",)
    assert row_annotation(QuantizedModel(Path("model.fp32.onnx"))) is None
