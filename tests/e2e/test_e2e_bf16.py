"""`nnship build` with `[quantize] precisions = ["int8", "bf16"]`: an OpenVINO bf16 row beside
INT8, gated like every other precision; ONNX Runtime skips bf16 with a note (issue 9 point 7)."""

from __future__ import annotations

import pytest

from nnship.validate.render.markdown import report_markdown

ov = pytest.importorskip("openvino")
HAS_BF16 = "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


@pytest.mark.slow
@pytest.mark.skipif(not HAS_BF16, reason="this CPU has no native bf16")
def test_build_reports_a_gated_bf16_row(write_recipe, tiny_recipe_text, tmp_path):
    from nnship.api import build

    recipe = write_recipe(
        tiny_recipe_text
        + '\n[quantize]\nprecisions = ["int8", "bf16"]\nmethod = "minmax"\n'
        + '\n[backends]\ntargets = ["onnxruntime", "openvino"]\n'
        + "\n[validate.gates]\nmin_top1_agreement = 90\n"
    )
    result = build(recipe, output_dir=tmp_path / "b")
    labels = [a.label for a in result.artifacts]
    assert "openvino/bf16" in labels and "onnxruntime/bf16" not in labels
    row = result.report.row("openvino/bf16")
    assert row.extra["artifact"]["metadata"]["inference_precision"] == "bf16"
    assert any(v.row == "openvino/bf16" and v.passed for v in result.report.gates)
    assert any("onnxruntime/bf16" in n and "OpenVINO" in n for n in result.report.notes)
    markdown = report_markdown(result.report)
    assert "openvino/bf16" in markdown and "CPU capabilities:" in markdown
