"""The bf16 precision: OpenVINO with bf16 inference precision where the CPU computes bf16, a
clear refusal (exit 2, naming the missing CPU capability) where it does not, and the CPU's
capabilities in every report. Regression for issue 9 point 7."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

pytest.importorskip("openvino")

import openvino as ov  # noqa: E402

from nnship.backends.onnxruntime import OnnxRuntimeBackend, OnnxRuntimeRunner  # noqa: E402
from nnship.backends.openvino import OpenVinoBackend  # noqa: E402
from nnship.backends.openvino import runner as openvino_runner  # noqa: E402
from nnship.core.errors import BackendError, QuantizationError  # noqa: E402
from nnship.quantize import make_config, quantize  # noqa: E402
from nnship.sources import ArrayData  # noqa: E402
from nnship.validate.render.markdown import report_markdown

RNG = np.random.default_rng(0)
HAS_BF16 = "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
needs_bf16 = pytest.mark.skipif(not HAS_BF16, reason="this CPU has no native bf16")


@pytest.fixture(scope="module")
def cnn(tmp_path_factory) -> Path:
    """Conv 3x3 -> Relu -> Conv 3x3 -> GlobalAveragePool -> Flatten -> Gemm (10 classes)."""
    inits = [
        numpy_helper.from_array(
            (RNG.standard_normal((16, 3, 3, 3)) * 0.3).astype(np.float32), "w1"
        ),
        numpy_helper.from_array(
            (RNG.standard_normal((32, 16, 3, 3)) * 0.1).astype(np.float32), "w2"
        ),
        numpy_helper.from_array((RNG.standard_normal((10, 32)) * 0.3).astype(np.float32), "wf"),
        numpy_helper.from_array(np.zeros(10, np.float32), "bf"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["c2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("bf16") / "cnn.onnx"
    onnx.save(model, str(path))
    return path


X = RNG.standard_normal((4, 3, 16, 16)).astype(np.float32)


def runtime_precisions(runner) -> set[str]:  # noqa: ANN001
    ops = runner.compiled_model.get_runtime_model().get_ordered_ops()
    return {op.get_rt_info()["runtimePrecision"].astype(str) for op in ops}


def no_bf16_cpu(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(openvino_runner, "device_capabilities", lambda core, d: ["FP32", "INT8"])
    monkeypatch.setattr(
        "nnship.core.environment._cpu_info", lambda: ("Test CPU 9000", ["avx2", "avx512f"])
    )


@needs_bf16
def test_bf16_artifact_computes_in_bf16_and_stays_close(cnn, tmp_path):
    artifact = OpenVinoBackend().compile(cnn, tmp_path / "ov", precision="bf16", threads=1)
    assert artifact.precision == "bf16" and artifact.label == "openvino/bf16"
    assert artifact.metadata["inference_precision"] == "bf16"
    assert "BF16" in artifact.metadata["device_capabilities"]
    # the recipe's f32 default for float baselines must not turn it back into f32
    with OpenVinoBackend().load(artifact, inference_precision="f32") as runner:
        assert "bf16" in runtime_precisions(runner)
        got = runner.run({"x": X})["logits"]
    with OnnxRuntimeRunner(cnn) as ref_runner:
        ref = ref_runner.run({"x": X})["logits"]
    assert not np.array_equal(got, ref)  # really reduced precision
    np.testing.assert_allclose(got, ref, atol=0.05 * np.abs(ref).max())


def test_bf16_is_refused_without_cpu_support(cnn, tmp_path, monkeypatch):
    no_bf16_cpu(monkeypatch)
    with pytest.raises(BackendError, match=r"'Test CPU 9000' has neither avx512_bf16 nor amx_bf16"):
        OpenVinoBackend().compile(cnn, tmp_path / "ov", precision="bf16")
    assert not (tmp_path / "ov" / "model.xml").exists()


def test_the_backend_answers_whether_this_machine_runs_bf16(monkeypatch):
    from nnship.backends import check_precision_supported

    no_bf16_cpu(monkeypatch)
    with pytest.raises(BackendError, match=r"'Test CPU 9000' has neither avx512_bf16 nor amx_bf16"):
        check_precision_supported("openvino", "bf16")


def test_cli_bf16_refusal_is_exit_2(cnn, tmp_path, monkeypatch, capsys):
    from nnship.cli.main import main

    no_bf16_cpu(monkeypatch)
    code = main(
        [
            "compile",
            str(cnn),
            "--backend",
            "openvino",
            "--precision",
            "bf16",
            "-o",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "avx512_bf16" in err and "Traceback" not in err


def test_onnxruntime_says_bf16_is_openvino_only(cnn, tmp_path):
    with pytest.raises(BackendError, match="OpenVINO precision"):
        OnnxRuntimeBackend().compile(cnn, tmp_path / "ort", precision="bf16")


def test_quantize_bf16_points_to_openvino(cnn, tmp_path):
    with pytest.raises(QuantizationError, match="--backend openvino --precision bf16"):
        quantize(cnn, tmp_path / "q.onnx", make_config(precisions=["bf16"]))


def test_recipe_accepts_bf16_and_the_build_plans_it_for_openvino_only():
    from types import SimpleNamespace

    from nnship.stages.quantize import plan_quantization

    cfg = make_config(precisions=["int8", "bf16"])
    backends = SimpleNamespace(options_for=lambda name: SimpleNamespace(int8_mode="qdq"))
    ctx = SimpleNamespace(recipe=SimpleNamespace(quantize=cfg, backends=backends))
    plan, special = plan_quantization(ctx, ["onnxruntime", "openvino"])  # type: ignore[arg-type]
    assert special[("openvino", "bf16")] == "float"
    assert "OpenVINO inference precision" in special[("onnxruntime", "bf16")]
    assert ("bf16", "any") not in plan


def test_every_report_records_the_cpu_capabilities(cnn):
    from nnship.validate import validate
    from nnship.validate.render.html import render_html

    with OnnxRuntimeRunner(cnn) as base, OnnxRuntimeRunner(cnn) as cand:
        report = validate(base, {"onnxruntime/fp32": cand}, ArrayData({"x": X}))
    env = report.environment
    assert env.openvino_capabilities and "FP32" in env.openvino_capabilities
    line = env.capabilities()
    for flag in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8"):
        assert flag in line
    assert f"CPU capabilities: {line}" in report_markdown(report)
    assert "CPU capabilities" in render_html(report)
    assert report.to_dict()["environment"]["openvino_capabilities"] == env.openvino_capabilities
