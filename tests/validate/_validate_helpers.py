"""Small real Runners for validator tests: a numpy function, a sleeper, an ONNX Runtime session."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from nnship.core import Batch, Runner, TensorSpec
from nnship.sources import ArrayData


class FunctionRunner(Runner):
    """Runs a numpy function of the batch; outputs named `output_names`."""

    def __init__(
        self,
        fn: Callable[[Batch], dict[str, np.ndarray]],
        specs: list[TensorSpec],
        outputs: list[str],
        name: str = "numpy",
    ) -> None:
        self.fn, self._specs, self._outputs, self.name = fn, specs, outputs, name
        self.calls = 0

    @property
    def input_specs(self) -> list[TensorSpec]:
        return self._specs

    @property
    def output_names(self) -> list[str]:
        return self._outputs

    def _run_impl(self, batch: Batch) -> dict[str, np.ndarray]:
        self.calls += 1
        return self.fn(batch)


class SleepRunner(FunctionRunner):
    """Sleeps `seconds` per call; returns the input."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            lambda b: {"output": b["x"]}, [TensorSpec("x", ("batch", 4))], ["output"], "sleep"
        )
        self.seconds = seconds

    def _run_impl(self, batch: Batch) -> dict[str, np.ndarray]:
        time.sleep(self.seconds)
        return super()._run_impl(batch)


class OrtRunner(Runner):
    """A minimal real ONNX Runtime runner (the project's own lives in nnship.backends)."""

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.name = "onnxruntime:cpu"

    @property
    def input_specs(self) -> list[TensorSpec]:
        return [TensorSpec(i.name, ("batch", *i.shape[1:])) for i in self.session.get_inputs()]

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.session.get_outputs()]

    def _run_impl(self, batch: Batch) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self.session.run(None, batch)))


def linear_classifier(seed: int = 0, features: int = 6, classes: int = 4):
    """(weights, bias, runner factory) of a fixed random linear classifier y = x W + b."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((features, classes)).astype(np.float32)
    b = rng.standard_normal(classes).astype(np.float32)

    def make(noise: float = 0.0, name: str = "linear", out: str = "output") -> FunctionRunner:
        wn = w + noise * np.random.default_rng(seed + 1).standard_normal(w.shape).astype(np.float32)
        return FunctionRunner(
            lambda batch: {out: batch["x"] @ wn + b},
            [TensorSpec("x", ("batch", features))],
            [out],
            name,
        )

    return w, b, make


def classification_data(n: int = 40, features: int = 6, seed: int = 3, labels=None) -> ArrayData:
    x = np.random.default_rng(seed).standard_normal((n, features)).astype(np.float32)
    return ArrayData({"x": x}, labels)
