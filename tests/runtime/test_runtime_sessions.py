"""Target selection and checked runs on real ONNX Runtime and OpenVINO sessions."""

from __future__ import annotations

import numpy as np
import pytest

from nnship.runtime import Bundle, BundleError, targets
from nnship.runtime.manifest import TensorInfo
from nnship.runtime.session import check_feeds


@pytest.fixture(scope="module")
def bundle(bundle_dir):
    return Bundle.load(bundle_dir)


@pytest.fixture
def without_openvino(monkeypatch):
    """This device as if OpenVINO were not installed."""
    monkeypatch.setitem(targets._CACHE, "openvino", None)


def test_auto_prefers_openvino_int8_when_installed(bundle):
    with bundle.session() as model:
        assert model.target == "openvino/int8" and model.device == "CPU"
        assert model.input_names == ["x"] and model.output_names == ["logits"]
        out = model.run(bundle.sample_inputs())
    np.testing.assert_allclose(
        out["logits"], bundle.expected_outputs("openvino/int8")["logits"], atol=1e-5
    )


def test_auto_falls_back_to_onnxruntime_without_openvino(bundle, without_openvino):
    assert bundle.session().target == "onnxruntime/int8"


@pytest.mark.parametrize("target", ["onnxruntime/fp32", "openvino/fp32", "onnxruntime/int8"])
def test_an_exact_target_is_picked_exactly(bundle, target):
    model = bundle.session(target)
    assert model.target == target
    assert model.backend == target.split("/")[0]
    result = bundle.smoke_test(target)
    assert result.passed and result.target == target and result.samples == 4


def test_openvino_fp32_computes_in_fp32_like_onnxruntime(bundle):
    """On a CPU with bf16 units OpenVINO would run float layers in bf16 unless pinned."""
    x = bundle.sample_inputs()
    ov_out = bundle.session("openvino/fp32").run(x)["logits"]
    ort_out = bundle.session("onnxruntime/fp32").run(x)["logits"]
    np.testing.assert_allclose(ov_out, ort_out, atol=1e-5, rtol=1e-5)


def test_a_backend_name_picks_its_best_artifact(bundle):
    assert bundle.session("onnxruntime").target == "onnxruntime/int8"
    assert bundle.session("openvino").target == "openvino/int8"


def test_an_artifact_that_failed_its_gates_is_picked_last(bundle_copy):
    manifest = bundle_copy.manifest()
    for art in manifest["artifacts"]:
        if art["precision"] == "int8":
            art["validation"]["gates"]["passed"] = False
    bundle_copy.save(manifest)
    assert Bundle.load(bundle_copy.path).session().target == "openvino/fp32"


def test_a_target_not_in_the_bundle_lists_the_offer_and_the_device(bundle):
    with pytest.raises(BundleError) as err:
        bundle.session("tensorrt/int8")
    msg = str(err.value)
    assert "'tensorrt/int8': not in this bundle" in msg
    assert "onnxruntime/fp32, onnxruntime/int8, openvino/fp32, openvino/int8" in msg
    assert "onnxruntime 1." in msg and "CPUExecutionProvider" in msg  # what this device has


def test_an_uninstalled_runtime_is_named_with_the_alternatives(bundle, without_openvino):
    with pytest.raises(BundleError) as err:
        bundle.session("openvino/int8")
    msg = str(err.value)
    assert "openvino is not installed" in msg and "nnship-runtime[openvino]" in msg
    assert "offers onnxruntime/fp32" in msg


def test_a_runtime_older_than_the_artifact_needs_is_refused(bundle_copy):
    manifest = bundle_copy.manifest()
    manifest["artifacts"][3]["runtime"]["min_version"] = "9999.1"
    bundle_copy.save(manifest)
    bundle = Bundle.load(bundle_copy.path)
    with pytest.raises(
        BundleError, match=r"'openvino/int8' cannot run here: needs openvino >= 9999\.1"
    ):
        bundle.session("openvino/int8")
    assert bundle.session().target == "openvino/fp32"  # auto skips it
    assert "9999.1" in bundle.runnable_targets()["openvino/int8"]


def test_threads_reach_the_runtime(bundle):
    with bundle.session("openvino/int8", threads=1) as model:
        assert int(model._compiled.get_property("INFERENCE_NUM_THREADS")) == 1
        assert str(model._compiled.get_property("INFERENCE_PRECISION_HINT")) == "<Type: 'float32'>"
    with bundle.session("onnxruntime/fp32", threads=1) as model:
        assert model._session.get_session_options().intra_op_num_threads == 1
    with pytest.raises(BundleError, match="threads: expected a positive integer, got 0"):
        bundle.session(threads=0)


def test_a_device_the_runtime_lacks_is_refused(bundle):
    with pytest.raises(BundleError, match=r"device 'XPU': OpenVINO here offers \['CPU'"):
        bundle.session("openvino/fp32", device="XPU")
    if "CUDAExecutionProvider" not in targets.runtime_info("onnxruntime").devices:
        with pytest.raises(BundleError, match="device 'CUDA': onnxruntime here offers"):
            bundle.session("onnxruntime/fp32", device="cuda")


@pytest.mark.parametrize("target", ["onnxruntime/fp32", "openvino/int8"])
@pytest.mark.parametrize(
    ("feeds", "message"),
    [
        ({"y": np.zeros((1, 3, 16, 16), np.float32)}, r"missing input\(s\) \['x'\]; unknown input\(s\) \['y'\]"),
        ({"x": np.zeros((1, 3, 16, 16), np.float64)}, r"input 'x': dtype float64, the model takes float32"),
        ({"x": np.zeros((3, 16, 16), np.float32)}, r"input 'x': shape \[3, 16, 16\] has 3 dims"),
        ({"x": np.zeros((2, 3, 16, 15), np.float32)}, r"input 'x': .*batchx3x16x16 \(axis 3 must be 16\)"),
        ({"x": [[0.0]]}, r"input 'x': expected a numpy array"),
    ],
)  # fmt: skip
def test_wrong_inputs_name_the_tensor(bundle, target, feeds, message):
    with bundle.session(target) as model, pytest.raises(BundleError, match=message):
        model.run(feeds)


def test_a_symbolic_dim_binds_one_size_across_inputs():
    specs = (TensorInfo("a", ("batch", 2), "float32"), TensorInfo("b", ("batch",), "int64"))
    check_feeds({"a": np.zeros((3, 2), np.float32), "b": np.zeros(3, np.int64)}, specs)
    with pytest.raises(BundleError, match=r"input 'b': axis 0 \('batch'\) is 4 but input 'a'"):
        check_feeds({"a": np.zeros((3, 2), np.float32), "b": np.zeros(4, np.int64)}, specs)


def test_a_closed_session_refuses_to_run(bundle):
    model = bundle.session("onnxruntime/fp32")
    model.close()
    with pytest.raises(BundleError, match="closed"):
        model.run(bundle.sample_inputs())


def test_smoke_test_fails_when_the_stored_outputs_differ(bundle_copy):
    path = bundle_copy.path / "samples/expected.onnxruntime-fp32.npz"
    with np.load(path) as data:
        logits = data["logits"] + 0.5
    np.savez(path, logits=logits)
    manifest = bundle_copy.manifest()
    bundle_copy.save(manifest)
    result = Bundle.load(bundle_copy.path).smoke_test("onnxruntime/fp32")
    assert not result.passed
    assert result.outputs[0].max_abs_error == pytest.approx(0.5, abs=1e-5)
    assert "FAILED" in result.summary() and result.to_dict()["passed"] is False


def test_version_tuples_compare_release_numbers():
    assert targets.version_tuple("2026.4.1-22982-e213a147257-releases/2026/4") == (2026, 4, 1)
    assert not targets._older("1.31.1", "1.31")
    assert targets._older("2024.3", "2024.4")
