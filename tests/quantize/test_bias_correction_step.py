"""Bias correction as the quantizer's last step: "on" corrects the shipped graph, "auto" keeps
it only when it measurably helps on the evaluation data, "off" never runs it."""

from __future__ import annotations

import onnx

from nnship.quantize import quantize
from nnship.quantize.config import make_config
from nnship.sources import ArrayData


def _considered(result) -> list[dict]:
    return [
        r for r in result.details.get("transforms_considered", []) if r["name"] == "bias_correction"
    ]


def test_on_corrects_the_quantized_biases(cnn_path, cnn_data, tmp_path):
    data = ArrayData(cnn_data)
    plain = quantize(
        cnn_path,
        tmp_path / "plain.onnx",
        make_config({"method": "minmax", "bias_correction": "off"}),
        calib_data=data,
    )
    corrected = quantize(
        cnn_path,
        tmp_path / "bc.onnx",
        make_config({"method": "minmax", "bias_correction": "on"}),
        calib_data=data,
    )
    assert _considered(plain) == []
    (record,) = _considered(corrected)
    assert record["applied"] and record["report"]["layers"]
    assert any(t["name"] == "bias_correction" for t in corrected.applied_transforms)
    inits = lambda path: {i.name: i for i in onnx.load(str(path)).graph.initializer}  # noqa: E731
    before, after = inits(tmp_path / "plain.onnx"), inits(tmp_path / "bc.onnx")
    changed = [n for n in before if n in after and before[n].raw_data != after[n].raw_data]
    assert changed, "bias correction changed no initializer"


def test_auto_decides_on_the_evaluation_data(cnn_path, cnn_data, tmp_path):
    data = ArrayData(cnn_data)
    result = quantize(
        cnn_path,
        tmp_path / "auto.onnx",
        make_config({"method": "minmax"}),
        calib_data=data,
        eval_data=data,
    )
    (record,) = _considered(result)
    before, after = record["metrics_without"], record["metrics_with"]
    assert before is not None and after is not None
    # the documented rule: higher top-1 agreement, or the same and a cosine higher by > 1e-4
    if "top1_agreement" in before and after["top1_agreement"] != before["top1_agreement"]:
        helps = after["top1_agreement"] > before["top1_agreement"]
    else:
        helps = after["cosine"] > before["cosine"] + 1e-4
    assert record["applied"] is helps
    expected = "applied: measurably helps" if helps else "not applied"
    assert record["decision"].startswith(expected)
    shipped = any(t["name"] == "bias_correction" for t in result.applied_transforms)
    assert shipped is helps  # the shipped graph follows the decision
