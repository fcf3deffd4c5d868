"""verify_onnx / compare_outputs / verification_samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from nnship.backends.torch_runner import TorchRunner
from nnship.core.errors import ExportError
from nnship.exporter import verification_samples, verify_onnx
from nnship.exporter.verify import compare_outputs


def test_corrupted_initializer_is_caught_and_the_output_named(resnet_export, tmp_path) -> None:
    module, result = resnet_export
    model = onnx.load(str(result.onnx_path))
    runner = TorchRunner(module, result.input_specs)
    samples = verification_samples({"x": np.ones((1, 3, 8, 8), np.float32)}, batch_size=2)
    assert verify_onnx(model, runner, samples).max_abs_error < 1e-4  # intact: passes

    # scale the largest weight tensor: the graph stays valid, the numbers do not
    init = max(model.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * 3.0, init.name))
    path = tmp_path / "corrupt.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ExportError, match=r"output 'output' disagrees.*max abs error .*atol="):
        verify_onnx(path, runner, samples)


def test_verify_onnx_reports_errors_per_output(encoder_export) -> None:
    module, result = encoder_export
    runner = TorchRunner(module, result.input_specs)
    examples = {
        "input_ids": np.array([[1, 2, 3, 4, 5, 6]], np.int64),
        "attention_mask": np.array([[1, 1, 1, 1, 0, 0]], np.int64),
    }
    samples = verification_samples(examples, count=3, batch_size=2)
    outcome = verify_onnx(Path(result.onnx_path), runner, samples)
    assert outcome.samples == 3 and outcome.batch_size == 2
    assert set(outcome.per_output) == {"output"} and outcome.max_abs_error < 1e-4


def test_samples_resemble_examples_and_are_deterministic() -> None:
    examples = {
        "ids": np.array([[3, 7, 7, 9]], np.int64),
        "mask": np.ones((1, 4), np.int64),
        "x": np.full((1, 5), 10.0, np.float32) + np.arange(5, dtype=np.float32),
    }
    first = verification_samples(examples, count=3, batch_size=2, seed=0)
    again = verification_samples(examples, count=3, batch_size=2, seed=0)
    assert len(first) == 3
    for a, b in zip(first, again):
        for name in examples:
            np.testing.assert_array_equal(a[name], b[name])
    np.testing.assert_array_equal(first[0]["ids"], np.repeat(examples["ids"], 2, axis=0))
    for sample in first[1:]:
        assert sample["ids"].shape == (2, 4) and sample["ids"].dtype == np.int64
        assert set(np.unique(sample["ids"])) <= {3, 7, 9}  # ids stay in the vocabulary seen
        assert (sample["mask"] == 1).all()  # an all-ones mask stays all ones
        assert sample["x"].dtype == np.float32 and 8.0 < sample["x"].mean() < 16.0


def test_compare_outputs_tolerance_nan_and_shape() -> None:
    want = {"y": np.array([1.0, 2.0, np.nan], np.float32)}
    ok = compare_outputs(want, {"y": np.array([1.0, 2.0005, np.nan], np.float32)})
    assert ok["y"] == pytest.approx(5e-4, rel=1e-2)
    with pytest.raises(ExportError, match=r"'y'.*at 1 of 3 values.*index \(2,\)"):
        compare_outputs(want, {"y": np.array([1.0, 2.0, 0.0], np.float32)})
    with pytest.raises(ExportError, match=r"'y' has shape \(2,\) but torch gives \(3,\)"):
        compare_outputs(want, {"y": np.zeros(2, np.float32)})
    with pytest.raises(ExportError, match="2 outputs"):
        compare_outputs(want, {"a": np.zeros(3), "b": np.zeros(3)})
    # names differ, counts agree: matched by position
    assert compare_outputs(want, {"other": want["y"].copy()}) == {"y": 0.0}
