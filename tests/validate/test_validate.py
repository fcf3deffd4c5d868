"""validate(): metrics, classification, gates and saved outputs through real runners."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from _validate_helpers import FunctionRunner, OrtRunner, classification_data, linear_classifier

from nnship.core import Artifact, TensorSpec
from nnship.core.errors import DataError
from nnship.sources import ArrayData
from nnship.validate import Gates, LatencyConfig, RowAnnotation, ValidateConfig, validate
from nnship.validate.outputs import SavedOutputsRunner

FAST = LatencyConfig(runs=5, min_warmup_runs=1, max_warmup_runs=2, stable_window=2)
NO_LATENCY = LatencyConfig(enabled=False)


def test_identical_candidate_matches_and_gates_pass() -> None:
    _, _, make = linear_classifier()
    data = classification_data()
    config = ValidateConfig(batch_size=7, gates=Gates(min_top1_agreement=100, min_cosine=0.9999,
                                                      max_latency_ms=1000), latency=FAST)  # fmt: skip
    report = validate(make(), {"same": make(name="copy")}, data, config=config)
    row = report.row("same")
    assert report.task == "classification"
    assert row.classification.top1_agreement == 100.0 and row.classification.top1_drop == 0.0
    assert row.outputs[0].exact_match and row.outputs[0].sqnr_db is None
    assert row.latency[0].batch_size == 1 and report.baseline.latency
    assert report.passed and len(report.gates) == 3
    assert report.data.num_samples == 40 and report.data.fingerprint


def test_accuracy_with_labels_and_top1_drop() -> None:
    _, _, make = linear_classifier()
    data = classification_data()
    labels = np.argmax(make().run(data._inputs)["output"], axis=1)  # baseline is always right
    labels[:4] = (labels[:4] + 1) % 4  # ...except on 4 of 40 samples
    data = classification_data(labels=labels)
    config = ValidateConfig(latency=NO_LATENCY, gates=Gates(max_top1_drop=1.0))
    report = validate(make(), {"noisy": make(noise=0.8)}, data, config=config)
    base_acc = report.baseline.classification.accuracy
    cls = report.row("noisy").classification
    assert base_acc == pytest.approx(90.0)
    assert cls.top1_drop == pytest.approx(base_acc - cls.accuracy)
    assert cls.top1_agreement < 100
    verdict = report.gates[0]
    assert verdict.gate == "max_top1_drop" and verdict.passed == (cls.top1_drop <= 1.0)


def test_failed_gates_are_reported_not_raised() -> None:
    _, _, make = linear_classifier()
    report = validate(
        make(), {"noisy": make(noise=0.5)}, classification_data(),
        config=ValidateConfig(latency=NO_LATENCY, gates=Gates(min_cosine=0.99999, max_size_mb=1)),
    )  # fmt: skip
    assert not report.passed
    by_gate = {v.gate: v for v in report.gates}
    assert not by_gate["min_cosine"].passed and by_gate["min_cosine"].value < 0.99999
    # no artifact on disk -> size unknown -> the gate fails saying why
    assert not by_gate["max_size_mb"].passed and "not measured" in by_gate["max_size_mb"].detail


def test_nan_candidate_fails_drift_gates() -> None:
    _, _, make = linear_classifier()
    broken = FunctionRunner(lambda b: {"output": np.full((len(b["x"]), 4), np.nan, np.float32)},
                            [TensorSpec("x", ("batch", 6))], ["output"])  # fmt: skip
    report = validate(make(), {"broken": broken}, classification_data(),
                      config=ValidateConfig(latency=NO_LATENCY, gates=Gates(min_sqnr_db=10)))  # fmt: skip
    assert report.row("broken").outputs[0].nonfinite_count == 40 * 4
    verdict = report.gates[0]
    assert not verdict.passed and verdict.value is None and "NaN" in verdict.detail
    assert json.loads(report.to_json())["rows"][0]["outputs"][0]["cosine_mean"] is None


def test_outputs_matched_by_position_and_regression_task() -> None:
    _, _, make = linear_classifier()
    renamed = make(out="logits")
    config = ValidateConfig(latency=NO_LATENCY, task="regression")
    report = validate(make(), {"renamed": renamed}, classification_data(), config=config)
    out = report.row("renamed").outputs[0]
    assert out.name == "logits" and out.baseline_name == "output"
    assert report.task == "regression" and report.row("renamed").classification is None


def test_classification_task_without_logits_is_refused() -> None:
    runner = FunctionRunner(lambda b: {"y": b["x"].sum(axis=1)}, [TensorSpec("x", ("batch", 6))],
                            ["y"])  # fmt: skip
    with pytest.raises(DataError, match="classification"):
        validate(runner, {"c": runner}, classification_data(),
                 config=ValidateConfig(latency=NO_LATENCY, task="classification"))  # fmt: skip


def test_max_samples_limits_the_evaluation() -> None:
    _, _, make = linear_classifier()
    base = make()
    report = validate(base, {"c": make()}, classification_data(),
                      config=ValidateConfig(latency=NO_LATENCY, max_samples=10, batch_size=4))  # fmt: skip
    assert report.data.num_samples == 10 and report.row("c").classification.samples == 10


def test_real_onnxruntime_candidate_with_artifact(tmp_path) -> None:
    w, b, make = linear_classifier()
    model = onnx.parser.parse_model(
        """<ir_version: 8, opset_import: ["" : 17]>
        g (float[N, 6] x) => (float[N, 4] output) {
            output = Gemm(x, W, B)
        }"""
    )
    model.graph.initializer.extend([onnx.numpy_helper.from_array(w, "W"),
                                    onnx.numpy_helper.from_array(b, "B")])  # fmt: skip
    onnx.checker.check_model(model, full_check=True)
    path = tmp_path / "model.onnx"
    onnx.save(model, path)
    artifact = Artifact(path=path, backend="onnxruntime", precision="fp32")
    report = validate(make(), {artifact.label: OrtRunner(path)}, classification_data(),
                      config=ValidateConfig(latency=FAST, gates=Gates(min_cosine=0.99999,
                                                                      max_size_mb=1)),
                      artifacts={artifact.label: artifact})  # fmt: skip
    row = report.row("onnxruntime/fp32")
    assert row.size_bytes == path.stat().st_size and row.sha256
    assert row.outputs[0].max_abs_error < 1e-5
    assert report.passed


def test_saved_outputs_replay_as_baseline_gives_identical_metrics(tmp_path) -> None:
    _, _, make = linear_classifier()
    data = classification_data(labels=np.arange(40) % 4)
    config = ValidateConfig(latency=NO_LATENCY, batch_size=8)
    first = validate(make(), {"noisy": make(noise=0.3)}, data, config=config,
                     save_outputs_dir=tmp_path, model_fingerprint="abc")  # fmt: skip
    saved = tmp_path / "baseline.npz"
    assert saved.is_file() and (tmp_path / "baseline.json").is_file()
    assert (tmp_path / "noisy.npz").is_file()
    replay = SavedOutputsRunner(saved)
    second = validate(replay, {"noisy": make(noise=0.3)}, data,
                      config=config.model_copy(update={"batch_size": 5}))  # fmt: skip
    a, b = first.row("noisy"), second.row("noisy")
    assert a.outputs[0].cosine_mean == pytest.approx(b.outputs[0].cosine_mean)
    assert a.classification == b.classification
    assert second.baseline.source.startswith("saved:")


def test_no_candidates_is_a_usage_error() -> None:
    _, _, make = linear_classifier()
    with pytest.raises(DataError, match="at least one candidate"):
        validate(make(), {}, ArrayData({"x": np.zeros((2, 6), np.float32)}))


def test_what_the_caller_knows_goes_into_the_report_it_gets_back() -> None:
    _, _, make = linear_classifier()
    report = validate(
        make(), {"a": make(name="a"), "b": make(name="b")}, classification_data(),
        config=ValidateConfig(latency=NO_LATENCY),
        annotations={"a": RowAnnotation(notes=("kept in float: Gemm",), extra={"quantize": {}})},
        notes=["built from recipe.toml"], extra={"build": {"name": "tiny"}},
    )  # fmt: skip
    assert report.row("a").notes == ["kept in float: Gemm"]
    assert report.row("a").extra == {"quantize": {}}
    assert report.row("b").notes == [] and report.row("b").extra == {}
    assert report.notes == ["built from recipe.toml"]
    assert report.extra == {"build": {"name": "tiny"}}


def test_an_annotation_for_no_candidate_is_a_usage_error() -> None:
    _, _, make = linear_classifier()
    with pytest.raises(DataError, match=r"Annotations for \['c'\]"):
        validate(make(), {"a": make()}, classification_data(),
                 config=ValidateConfig(latency=NO_LATENCY), annotations={"c": RowAnnotation()})  # fmt: skip
