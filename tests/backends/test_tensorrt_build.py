"""TensorRT adapter against a fake `tensorrt` module: the calls and flags it makes, the build
kit it always writes, profiles, errors. (The real-engine test is in test_tensorrt_gpu.py.)"""

from __future__ import annotations

import json
import re
import runpy
import sys

import numpy as np
import pytest
import tensorrt_fake
from trt_models import float_graph, qdq_conv, save

from nnship.backends.config import ShapeRange, TensorRtOptions
from nnship.backends.tensorrt import TensorRtBackend, TensorRtRunner
from nnship.backends.tensorrt import backend as trt_backend
from nnship.backends.tensorrt import runner as trt_runner
from nnship.core.errors import BackendError, DataError, MissingDependencyError


@pytest.fixture
def fake_trt(monkeypatch):
    """The fake module as `tensorrt`, and a pretend GPU."""
    fake = tensorrt_fake.module()
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    monkeypatch.setattr(trt_backend, "cuda_unavailable_reason", lambda index=0: "")
    monkeypatch.setattr(trt_runner, "cuda_unavailable_reason", lambda index=0: "")
    monkeypatch.setattr(trt_backend, "_select_gpu", lambda index: "Fake GPU")
    return fake


@pytest.fixture
def no_trt(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt -> ImportError


@pytest.fixture
def int8_onnx(tmp_path):
    return save(qdq_conv(), tmp_path / "model.int8.onnx")


def test_build_uses_strong_typing_workspace_profiles_and_no_precision_flags(
    fake_trt, int8_onnx, tmp_path
):
    out = tmp_path / "trt"
    artifact = TensorRtBackend().compile(int8_onnx, out, workspace_mb=256, max_batch=16)
    calls = fake_trt.calls
    strongly_typed = 1 << int(fake_trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    assert calls.named("create_network") == [("create_network", strongly_typed)]
    assert calls.named("parse_from_file") == [("parse_from_file", str(out / "model.int8.onnx"))]
    assert calls.named("set_memory_pool_limit") == [
        ("set_memory_pool_limit", fake_trt.MemoryPoolType.WORKSPACE, 256 << 20)
    ]
    assert calls.named("set_shape") == [
        ("set_shape", "x", (1, 3, 8, 8), (1, 3, 8, 8), (16, 3, 8, 8))
    ]
    assert len(calls.named("build_serialized_network")) == 1
    # The fake has no BuilderFlag at all (TensorRT 11): reaching here proves none was set.
    assert not hasattr(fake_trt, "BuilderFlag")
    engine = out / "model.engine"
    assert artifact.path == engine and engine.is_file()
    assert artifact.precision == "int8" and artifact.metadata["engine_built"] is True
    assert artifact.metadata["gpu"] == "Fake GPU"
    assert (out / "artifact.json").is_file() and (out / "build_trtexec.sh").is_file()


def test_timing_cache_is_reused_across_builds(fake_trt, int8_onnx, tmp_path):
    cache = tmp_path / "shared" / "trt.cache"
    TensorRtBackend().compile(int8_onnx, tmp_path / "a", timing_cache=cache)
    assert fake_trt.calls.named("create_timing_cache") == [("create_timing_cache", b"")]
    first = cache.read_bytes()
    assert first
    fake_trt.calls.calls.clear()
    TensorRtBackend().compile(int8_onnx, tmp_path / "b", timing_cache=cache)
    assert fake_trt.calls.named("create_timing_cache") == [("create_timing_cache", first)]
    assert fake_trt.calls.named("set_timing_cache")[0][2] is False  # ignore_mismatch off


def test_parser_errors_are_all_listed_and_no_engine_written(fake_trt, tmp_path):
    model = qdq_conv()
    fake_trt.calls.reject_ops = {"Conv", "Relu"}
    path = save(model, tmp_path / "m.onnx")
    with pytest.raises(BackendError) as info:
        TensorRtBackend().compile(path, tmp_path / "out")
    message = str(info.value)
    assert "2 error(s)" in message
    assert "node name 'conv'" in message and "node name 'relu'" in message
    assert not (tmp_path / "out" / "model.engine").exists()
    assert not (tmp_path / "out" / "artifact.json").exists()
    assert (tmp_path / "out" / "build_spec.json").is_file()  # the kit is still there


def test_failed_build_raises(fake_trt, int8_onnx, tmp_path):
    fake_trt.calls.fail_build = True
    with pytest.raises(BackendError, match="could not build"):
        TensorRtBackend().compile(int8_onnx, tmp_path / "out")
    assert not (tmp_path / "out" / "model.engine").exists()


def test_kit_is_written_without_tensorrt(no_trt, int8_onnx, tmp_path):
    out = tmp_path / "kit"
    artifact = TensorRtBackend().compile(int8_onnx, out)
    assert artifact.path == out and artifact.metadata["engine_built"] is False
    assert "not installed" in artifact.metadata["engine_skipped_reason"]
    spec = json.loads((out / "build_spec.json").read_text())
    assert spec["onnx"] == "model.int8.onnx" and spec["workspace_mb"] == 1024
    assert spec["profiles"] == [{"x": {"min": [1, 3, 8, 8], "opt": [1, 3, 8, 8],
                                       "max": [32, 3, 8, 8]}}]  # fmt: skip
    command = (out / "build_trtexec.sh").read_text()
    for flag in ("--onnx=model.int8.onnx", "--stronglyTyped", "--memPoolSize=workspace:1024M",
                 "--minShapes=x:1x3x8x8", "--maxShapes=x:32x3x8x8", "--saveEngine=model.engine",
                 "--timingCacheFile=timing.cache"):  # fmt: skip
        assert flag in command
    assert "--int8" not in command and "--fp16" not in command
    assert (out / "model.int8.onnx").read_bytes() == int8_onnx.read_bytes()
    with pytest.raises(BackendError, match="build_trtexec.sh"):
        TensorRtBackend().load(out)


def test_kit_script_builds_the_engine_on_the_target(no_trt, int8_onnx, tmp_path, monkeypatch):
    """The kit's standalone build_engine.py, run where TensorRT exists, writes the engine."""
    out = tmp_path / "kit"
    TensorRtBackend().compile(int8_onnx, out)
    fake = tensorrt_fake.module()
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    namespace = runpy.run_path(str(out / "build_engine.py"))
    assert namespace["main"]([str(out / "build_spec.json")]) == 0
    assert (out / "model.engine").is_file() and (out / "timing.cache").is_file()
    assert fake.calls.named("set_shape")[0][1] == "x"
    script = (out / "build_engine.py").read_text()
    assert not re.search(r"^\s*(import|from)\s+nnship", script, re.MULTILINE)  # standalone


def test_build_engine_always_without_tensorrt_names_the_extra(no_trt, int8_onnx, tmp_path):
    with pytest.raises(BackendError, match=r"nnship\[tensorrt\]"):
        TensorRtBackend().compile(int8_onnx, tmp_path / "out", build_engine="always")
    assert (tmp_path / "out" / "build_trtexec.sh").is_file()


def test_runner_without_tensorrt_names_the_extra(no_trt, tmp_path):
    with pytest.raises(MissingDependencyError, match=r"nnship\[tensorrt\]"):
        TensorRtRunner(tmp_path / "model.engine")


def test_dynamic_dimension_without_a_range_is_an_error(no_trt, tmp_path):
    model = float_graph("y = Relu(x)", "float[batch,seq] x", "float[batch,seq] y")
    path = save(model, tmp_path / "enc.onnx")
    with pytest.raises(BackendError) as info:
        TensorRtBackend().compile(path, tmp_path / "out")
    message = str(info.value)
    assert "'seq'" in message and "input 'x'" in message and "--shapes x:" in message
    assert not (tmp_path / "out" / "artifact.json").exists()
    _, shape = ShapeRange.parse("x:1x8,4x64,8x128")
    artifact = TensorRtBackend().compile(
        path, tmp_path / "out", options=TensorRtOptions(profiles=[{"x": shape}])
    )
    assert artifact.metadata["build_spec"]["profiles"] == [
        {"x": {"min": [1, 8], "opt": [4, 64], "max": [8, 128]}}
    ]


def test_profile_must_respect_fixed_dims_and_known_inputs(no_trt, int8_onnx, tmp_path):
    wrong = {"x": ShapeRange(min=[1, 3, 8, 8], opt=[1, 3, 16, 16], max=[2, 3, 16, 16])}
    with pytest.raises(BackendError, match="axis 2 of 'x' is fixed at 8"):
        TensorRtBackend().compile(int8_onnx, tmp_path / "o", profiles=[wrong])
    unknown = {"images": ShapeRange(min=[1], opt=[1], max=[1])}
    with pytest.raises(BackendError, match="unknown input"):
        TensorRtBackend().compile(int8_onnx, tmp_path / "o", profiles=[unknown])


def test_precision_comes_from_the_onnx(no_trt, int8_onnx, tmp_path):
    with pytest.raises(BackendError, match="strongly typed"):
        TensorRtBackend().compile(int8_onnx, tmp_path / "o", precision="fp16")


def test_model_the_parser_would_reject_is_stopped_before_writing(no_trt, tmp_path):
    bad = save(qdq_conv(act_zp_dtype=np.uint8, act_zp=128), tmp_path / "u8.onnx")
    with pytest.raises(BackendError) as info:
        TensorRtBackend().compile(bad, tmp_path / "out")
    assert "quant_x" in str(info.value) and "nnship check --target tensorrt" in str(info.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_runner_binds_addresses_sets_shapes_and_executes(
    fake_trt, int8_onnx, tmp_path, monkeypatch
):
    import torch

    monkeypatch.setattr(trt_runner, "_device_for", lambda index: torch.device("cpu"))
    monkeypatch.setattr(trt_runner, "_CudaStream", tensorrt_fake.HostStream)
    artifact = TensorRtBackend().compile(int8_onnx, tmp_path / "trt")
    with TensorRtBackend().load(tmp_path / "trt") as runner:
        assert [s.name for s in runner.input_specs] == ["x"]
        assert runner.input_specs[0].shape == ("batch", 3, 8, 8)
        assert runner.output_names == artifact.metadata["output_names"] == ["y"]
        for batch in (2, 3):
            x = np.random.default_rng(batch).standard_normal((batch, 3, 8, 8)).astype(np.float32)
            out = runner.run({"x": x})
            np.testing.assert_allclose(out["y"], tensorrt_fake.expected_output({"x": x}), rtol=1e-5)
        calls = fake_trt.calls
        assert ("set_input_shape", "x", (2, 3, 8, 8)) in calls.calls
        assert ("set_input_shape", "x", (3, 3, 8, 8)) in calls.calls
        assert {c[1] for c in calls.named("set_tensor_address")} == {"x", "y"}
        assert calls.named("execute_async_v3") == [("execute_async_v3", 1234)] * 2
        with pytest.raises(DataError, match="expected rank"):
            runner.run({"x": np.zeros((3, 8, 8), np.float32)})


def test_cli_compile_tensorrt_writes_the_kit(int8_onnx, tmp_path, run_cli):
    out = tmp_path / "trt"
    result = run_cli("compile", int8_onnx, "--backend", "tensorrt", "-o", out,
                     "--shapes", "x:1x3x8x8,4x3x8x8,8x3x8x8", "--build-engine", "never")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "trtexec --onnx=model.int8.onnx" in result.stdout
    assert "--optShapes=x:4x3x8x8" in (out / "build_trtexec.sh").read_text()
    bad = run_cli("compile", int8_onnx, "--backend", "tensorrt", "--shapes", "x:1x3", "-o", out)
    assert bad.returncode == 2 and "--shapes" in bad.stderr
