"""Core types: TensorSpec parsing/checking, batch checks, ArrayData, Runner guards."""

from __future__ import annotations

import numpy as np
import pytest

from nnship.core import Runner, TensorSpec, check_batch, example_batch
from nnship.core.errors import DataError
from nnship.sources import ArrayData


def test_parse_input_spec_with_default_and_explicit_dtype() -> None:
    assert TensorSpec.parse("x:1x3x224x224") == TensorSpec("x", (1, 3, 224, 224), "float32")
    spec = TensorSpec.parse("input_ids:1x128:int64")
    assert spec.shape == (1, 128) and spec.dtype == "int64"


@pytest.mark.parametrize("text", ["x", "x:", "x:1xa", "x:0x3", ":1x3"])
def test_parse_rejects_malformed_specs(text: str) -> None:
    with pytest.raises(DataError, match="--input"):
        TensorSpec.parse(text)


def test_check_names_tensor_and_both_shapes() -> None:
    spec = TensorSpec("x", ("batch", 3, 8, 8))
    spec.check(np.zeros((5, 3, 8, 8), np.float32))  # symbolic batch accepts any size
    with pytest.raises(DataError, match=r"'x'.*\[batch, 3, 8, 8\].*\(5, 4, 8, 8\)"):
        spec.check(np.zeros((5, 4, 8, 8), np.float32))
    with pytest.raises(DataError, match="rank 4"):
        spec.check(np.zeros((3, 8, 8), np.float32))
    with pytest.raises(DataError, match="dtype float32, got float64"):
        spec.check(np.zeros((1, 3, 8, 8)))


def test_check_batch_reports_missing_and_unexpected_names_and_nan() -> None:
    specs = [TensorSpec("a", ("batch", 2)), TensorSpec("b", ("batch", 2))]
    with pytest.raises(DataError, match=r"missing \['b'\].*unexpected \['c'\]"):
        check_batch(specs, {"a": np.zeros((1, 2), np.float32), "c": np.zeros((1, 2), np.float32)})
    bad = {"a": np.array([[np.nan, 0]], np.float32), "b": np.zeros((1, 2), np.float32)}
    with pytest.raises(DataError, match="'a'.*NaN/Inf"):
        check_batch(specs, bad)


def test_example_batch_is_deterministic_and_masks_are_ones() -> None:
    specs = [
        TensorSpec("input_ids", (1, 16), "int64"),
        TensorSpec("attention_mask", (1, 16), "int64"),
    ]
    first, second = example_batch(specs, batch=2), example_batch(specs, batch=2)
    assert first["input_ids"].shape == (2, 16)
    np.testing.assert_array_equal(first["input_ids"], second["input_ids"])
    assert (first["attention_mask"] == 1).all()


def test_array_data_batches_and_errors() -> None:
    data = ArrayData({"x": np.arange(10, dtype=np.float32)[:, None]}, np.arange(10))
    batches = list(data.iter_batches(4))
    assert [len(b.labels) for b in batches] == [4, 4, 2]
    assert (
        data.fingerprint()
        == ArrayData({"x": np.arange(10, dtype=np.float32)[:, None]}, np.arange(10)).fingerprint()
    )
    with pytest.raises(DataError, match="empty"):
        ArrayData({"x": np.zeros((0, 2), np.float32)})
    with pytest.raises(DataError, match="different sample counts"):
        ArrayData({"x": np.zeros((2, 2), np.float32), "y": np.zeros((3, 2), np.float32)})


class _Doubler(Runner):
    name = "doubler"

    @property
    def input_specs(self) -> list[TensorSpec]:
        return [TensorSpec("x", ("batch", 2))]

    @property
    def output_names(self) -> list[str]:
        return ["y"]

    def _run_impl(self, batch):
        return {"y": batch["x"] * 2}


def test_runner_template_checks_inputs_before_running() -> None:
    with _Doubler() as runner:
        out = runner.run({"x": np.ones((3, 2), np.float32)})
        np.testing.assert_array_equal(out["y"], np.full((3, 2), 2, np.float32))
        with pytest.raises(DataError, match="inputs to doubler"):
            runner.run({"x": np.ones((3, 5), np.float32)})
