"""The one interface every model runner implements: the torch baseline and every backend."""

from __future__ import annotations

import abc

import numpy as np

from nnship.core.errors import BackendError
from nnship.core.tensors import Batch, TensorSpec, check_batch


class Runner(abc.ABC):
    """Runs a model on named numpy inputs. One interface for torch and every backend.

    Template method: `run` owns the guards (input names/shapes/dtypes checked against
    `input_specs`, NaN/Inf rejected) and the error messages; a backend overrides only
    `_run_impl` (and `_close_impl` if it holds resources).
    """

    name: str = "runner"
    """Short label such as "torch", "onnxruntime:cpu", "openvino:CPU"."""

    @property
    @abc.abstractmethod
    def input_specs(self) -> list[TensorSpec]:
        """Declared inputs; symbolic dims accept any size."""

    @property
    @abc.abstractmethod
    def output_names(self) -> list[str]:
        """Names of the outputs `run` returns, in model order."""

    @abc.abstractmethod
    def _run_impl(self, batch: Batch) -> dict[str, np.ndarray]:
        """Backend-specific execution on checked inputs."""

    def run(self, batch: Batch, *, check: bool = True) -> dict[str, np.ndarray]:
        """Run the model on `batch`; returns outputs by name as numpy arrays.

        `check=False` skips input validation (latency loops validate once, then time without it).
        """
        if getattr(self, "_closed", False):
            raise BackendError(f"Runner {self.name} is closed; open the artifact again to run it")
        if check:
            check_batch(self.input_specs, batch, where=f"inputs to {self.name}")
        return self._run_impl(batch)

    @property
    def closed(self) -> bool:
        """True after `close()`; `run` then raises `BackendError`."""
        return bool(getattr(self, "_closed", False))

    def close(self) -> None:
        """Release sessions/engines. Idempotent."""
        if getattr(self, "_closed", False):
            return
        self._close_impl()
        self._closed = True

    def _close_impl(self) -> None:
        return None

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class OpenedRunner(Runner):
    """A runner that learns its inputs and outputs when it opens the model (ONNX Runtime,
    OpenVINO, TensorRT): its constructor sets `_inputs` (TensorSpecs, see
    `nnship.core.tensors.runtime_spec`) and `_outputs` (names), and these properties serve
    them."""

    _inputs: list[TensorSpec]
    _outputs: list[str]

    @property
    def input_specs(self) -> list[TensorSpec]:
        return list(self._inputs)

    @property
    def output_names(self) -> list[str]:
        return list(self._outputs)
