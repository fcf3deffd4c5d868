"""OpenVINO backend with the real OpenVINO and NNCF: float and INT8 (both ways) artifacts,
runners, async throughput, bad input, and the cross-backend report."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from nnship.backends.openvino import OpenVinoBackend, OpenVinoRunner
from nnship.core.errors import BackendError, MissingDependencyError
from nnship.sources import ArrayData

pytest.importorskip("openvino")


class SmallCnn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.fc = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.fc(x.mean(dim=(2, 3)))


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """A float ONNX (dynamic batch), its ORT QDQ INT8 version, and calibration arrays."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    folder = tmp_path_factory.mktemp("ov")
    torch.manual_seed(0)
    model = SmallCnn().eval()
    fp32 = folder / "cnn.onnx"
    torch.onnx.export(
        model, (torch.randn(1, 3, 16, 16),), str(fp32), input_names=["x"],
        output_names=["output"], dynamic_axes={"x": {0: "batch"}}, opset_version=17,
        dynamo=False,
    )  # fmt: skip
    calib = np.random.default_rng(0).standard_normal((32, 3, 16, 16)).astype(np.float32)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([{"x": calib[i : i + 1]} for i in range(len(calib))])

        def get_next(self):
            return next(self.items, None)

    int8 = folder / "cnn.int8.onnx"
    quantize_static(str(fp32), str(int8), Reader(), quant_format=QuantFormat.QDQ, per_channel=True)
    np.save(folder / "calib.npy", calib)
    return {"fp32": fp32, "int8": int8, "calib": folder / "calib.npy", "dir": folder}


def ort_run(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def runtime_precisions(runner: OpenVinoRunner) -> set[str]:
    """Precisions OpenVINO actually executes nodes in (from the runtime graph)."""
    ops = runner.compiled_model.get_runtime_model().get_ordered_ops()
    return {op.get_rt_info()["runtimePrecision"].astype(str) for op in ops}


X = np.random.default_rng(1).standard_normal((3, 3, 16, 16)).astype(np.float32)


def test_fp32_ir_matches_onnxruntime_and_writes_the_artifact(models, tmp_path):
    artifact = OpenVinoBackend().compile(models["fp32"], tmp_path / "ov", threads=1)
    assert artifact.label == "openvino/fp32" and artifact.device == "CPU"
    for name in ("model.xml", "model.bin", "artifact.json"):
        assert (tmp_path / "ov" / name).is_file()
    assert not [p for p in (tmp_path / "ov").iterdir() if p.name.startswith(".")]
    with OpenVinoBackend().load(tmp_path / "ov") as runner:
        assert runner.output_names == ["output"]
        assert runner.input_specs[0].shape == ("batch", 3, 16, 16)
        # inference precision pinned to f32 (OpenVINO's default here would be bf16)
        assert (
            str(runner.compiled_model.get_property("INFERENCE_PRECISION_HINT"))
            == "<Type: 'float32'>"
        )
        got = runner.run({"x": X})["output"]
    np.testing.assert_allclose(got, ort_run(models["fp32"], X), atol=1e-4, rtol=1e-4)


def test_repeated_runs_see_new_arrays_and_in_place_changes(models):
    with OpenVinoRunner(models["fp32"]) as runner:
        x = X[:2].copy()
        first = runner.run({"x": x})["output"]
        x *= 2.0  # same array object, new content: must not reuse stale results
        second = runner.run({"x": x})["output"]
        third = runner.run({"x": X[:1]})["output"]  # another array and shape
        strided = runner.run({"x": X[::2]})["output"]  # non-contiguous input
    np.testing.assert_allclose(first, ort_run(models["fp32"], X[:2]), atol=1e-4)
    np.testing.assert_allclose(second, ort_run(models["fp32"], X[:2] * 2), atol=1e-4)
    assert third.shape == (1, 5)
    np.testing.assert_allclose(strided, ort_run(models["fp32"], X[::2].copy()), atol=1e-4)


def test_fp16_compression_halves_the_weights(models, tmp_path):
    fp32 = OpenVinoBackend().compile(models["fp32"], tmp_path / "a")
    fp16 = OpenVinoBackend().compile(models["fp32"], tmp_path / "b", precision="fp16")
    assert fp16.precision == "fp16"
    size32 = (tmp_path / "a" / "model.bin").stat().st_size
    size16 = (tmp_path / "b" / "model.bin").stat().st_size
    assert size16 < 0.6 * size32
    with OpenVinoBackend().load(fp16) as runner:
        got = runner.run({"x": X})["output"]
    np.testing.assert_allclose(got, ort_run(models["fp32"], X), atol=5e-2)
    assert fp32.metadata["options"]["compress_to_fp16"] is False


def test_qdq_onnx_runs_int8_kernels(models, tmp_path):
    artifact = OpenVinoBackend().compile(models["int8"], tmp_path / "q")
    assert artifact.precision == "int8" and artifact.metadata["int8_mode"] == "qdq"
    with OpenVinoBackend().load(artifact) as runner:
        assert runtime_precisions(runner) & {"i8", "u8"}
        got = runner.run({"x": X})["output"]
    expected = ort_run(models["int8"], X)
    assert np.abs(got - expected).max() < 0.1 * np.abs(expected).max()


def test_nncf_int8_from_float_with_exclusions(models, tmp_path):
    calib = ArrayData({"x": np.load(models["calib"])})
    backend = OpenVinoBackend()
    full = backend.compile(
        models["fp32"], tmp_path / "n1", precision="int8", calib_data=calib, int8_mode="nncf"
    )
    assert full.metadata["int8_mode"] == "nncf"
    partial = backend.compile(
        models["fp32"], tmp_path / "n2", precision="int8", calib_data=calib,
        int8_mode="nncf", exclude_op_types=["Gemm"],
    )  # fmt: skip
    import openvino as ov

    def fake_quantize_count(path: Path) -> int:
        model = ov.Core().read_model(str(path))
        return sum(op.get_type_name() == "FakeQuantize" for op in model.get_ordered_ops())

    assert fake_quantize_count(partial.path) < fake_quantize_count(full.path)
    with backend.load(full) as runner:
        assert runtime_precisions(runner) & {"i8", "u8"}
        got = runner.run({"x": X})["output"]
    expected = ort_run(models["fp32"], X)
    assert np.abs(got - expected).max() < 0.1 * np.abs(expected).max()


def test_int8_from_float_needs_calibration_data(models, tmp_path):
    with pytest.raises(BackendError, match="calibration data"):
        OpenVinoBackend().compile(
            models["fp32"], tmp_path / "x", precision="int8", int8_mode="nncf"
        )
    with pytest.raises(BackendError, match="int8_mode is 'qdq'"):
        OpenVinoBackend().compile(models["fp32"], tmp_path / "x", precision="int8", int8_mode="qdq")
    with pytest.raises(BackendError, match="is quantized"):
        OpenVinoBackend().compile(models["int8"], tmp_path / "x", precision="fp32")


def test_unknown_device_lists_the_available_ones(models, tmp_path):
    with pytest.raises(BackendError) as info:
        OpenVinoBackend().compile(models["fp32"], tmp_path / "npu", device="NPU")
    assert "'NPU'" in str(info.value) and "CPU" in str(info.value)
    assert not (tmp_path / "npu" / "model.xml").exists()
    assert not (tmp_path / "npu" / "artifact.json").exists()


def test_bad_option_names_the_field(models, tmp_path):
    with pytest.raises(BackendError, match=r"\[backends.openvino\] hint"):
        OpenVinoBackend().compile(models["fp32"], tmp_path / "x", hint="fastest")


def test_missing_openvino_names_the_extra(models, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(MissingDependencyError, match=r"nnship\[openvino\]"):
        OpenVinoRunner(models["fp32"])


def test_unconvertible_model_leaves_no_artifact(tmp_path):
    node = onnx.helper.make_node("NoSuchOp", ["x"], ["y"], domain="com.example")
    graph = onnx.helper.make_graph(
        [node], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])],
    )  # fmt: skip
    model = onnx.helper.make_model(
        graph,
        opset_imports=[
            onnx.helper.make_opsetid("", 17),
            onnx.helper.make_opsetid("com.example", 1),
        ],
    )
    onnx.save(model, str(tmp_path / "bad.onnx"))
    out = tmp_path / "out"
    with pytest.raises(BackendError, match="bad.onnx"):
        OpenVinoBackend().compile(tmp_path / "bad.onnx", out)
    assert list(out.iterdir()) == []


def test_moved_directory_still_loads_with_its_options(models, tmp_path):
    OpenVinoBackend().compile(models["fp32"], tmp_path / "a", threads=1, hint="throughput")
    shutil.move(tmp_path / "a", tmp_path / "b")
    with OpenVinoBackend().load(tmp_path / "b") as runner:
        assert runner.options.threads == 1 and runner.options.hint == "throughput"
        assert runner.run({"x": X[:1]})["output"].shape == (1, 5)
    with OpenVinoBackend().load(tmp_path / "b", hint="latency") as runner:
        assert runner.options.hint == "latency"


def test_run_throughput_uses_the_async_queue(models):
    with OpenVinoRunner(models["fp32"], hint="throughput", threads=2) as runner:
        result = runner.run_throughput({"x": X[:1]}, duration_s=0.3, num_requests=2)
    assert result["num_requests"] == 2 and result["iterations"] >= 2
    assert result["throughput_per_s"] > 0 and result["latency_ms"]["p50"] > 0
    assert result["batch_size"] == 1


def test_cli_compile_openvino(models, tmp_path, run_cli):
    out = tmp_path / "cli"
    result = run_cli("compile", models["int8"], "--backend", "openvino", "--device", "CPU",
                     "--threads", "2", "-o", out)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "openvino/int8" in result.stdout and (out / "model.xml").is_file()
    bad = run_cli("compile", models["fp32"], "--backend", "openvino", "--device", "NPU",
                  "-o", tmp_path / "npu")  # fmt: skip
    assert bad.returncode == 2 and "available devices: CPU" in bad.stderr


@pytest.mark.slow
def test_cli_compile_nncf_then_bench(models, tmp_path, run_cli):
    out = tmp_path / "ov8"
    result = run_cli("compile", models["fp32"], "-b", "ov", "--precision", "int8",
                     "--calib", models["calib"], "-o", out)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "INT8 via nncf" in result.stdout
    bench = run_cli("bench", out, "--threads", "2", "--hint", "latency", "--runs", "20")
    assert bench.returncode == 0, bench.stderr
    assert "p50" in bench.stdout.lower() or "ms" in bench.stdout


@pytest.mark.slow
def test_one_report_across_backends(models, tmp_path):
    """compile_targets + load_runners + validate: a row per (backend, precision); the TensorRT
    build kit (no GPU here) is reported as skipped, not as a failure."""
    validate_mod = pytest.importorskip("nnship.validate.validate")
    from nnship.backends.compile import compile_targets, load_runners
    from nnship.backends.config import BackendsConfig
    from nnship.backends.onnxruntime import OnnxRuntimeRunner
    from nnship.validate.config import LatencyConfig

    config = BackendsConfig(
        targets=["onnxruntime", "openvino", "tensorrt"],
        openvino={"threads": 1, "int8_mode": "nncf"},
        tensorrt={"build_engine": "never"},
    )
    calib = ArrayData({"x": np.load(models["calib"])})
    artifacts = compile_targets(
        models["fp32"],
        tmp_path / "backends",
        config,
        quantized={"int8": {"onnxruntime": models["int8"], "openvino": models["int8"]}},
        calib_data=calib,
    )
    labels = [a.label for a in artifacts]
    assert labels == ["onnxruntime/fp32", "onnxruntime/int8", "openvino/fp32", "openvino/int8",
                      "tensorrt/fp32"]  # fmt: skip
    assert artifacts[3].metadata["int8_mode"] == "nncf"
    runners, skipped = load_runners(artifacts, config)
    assert set(skipped) == {"tensorrt/fp32"}
    data = ArrayData(
        {"x": np.random.default_rng(2).standard_normal((16, 3, 16, 16)).astype(np.float32)}
    )
    with OnnxRuntimeRunner(models["fp32"]) as baseline:
        report = validate_mod.validate(
            baseline, runners, data, latency=LatencyConfig(runs=5, min_warmup_runs=1,
                                                           max_warmup_runs=5),
        )  # fmt: skip
    for runner in runners.values():
        runner.close()
    rows = {row.label for row in report.rows}
    assert {"onnxruntime/fp32", "openvino/fp32", "openvino/int8", "onnxruntime/int8"} <= rows


def test_fp16_onnx_keeps_its_input_name_in_openvino(tmp_path):
    """An FP16 ONNX with float32 I/O has a Cast fused into its input; the runner must still
    call the input by the model's name, not by the Cast's tensor name."""
    import torch

    from nnship.quantize import quantize
    from nnship.quantize.config import make_config

    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten())
    torch.onnx.export(
        model,
        (torch.zeros(1, 1, 6, 6),),
        str(tmp_path / "m.onnx"),
        input_names=["x"],
        output_names=["y"],
        dynamo=False,
    )
    quantize(tmp_path / "m.onnx", tmp_path / "m16.onnx", make_config({"precisions": ["fp16"]}))
    runner = OpenVinoRunner(tmp_path / "m16.onnx")
    assert [spec.name for spec in runner.input_specs] == ["x"]
    out = runner.run({"x": np.ones((1, 1, 6, 6), np.float32)})
    assert out[runner.output_names[0]].shape == (1, 64)
