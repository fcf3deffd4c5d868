"""The TensorRT runner: a serialized engine on a CUDA GPU, as a `Runner`.

TensorRT and torch (for CUDA memory and streams) are imported when a runner is opened, never on
import. The builder lives in `nnship.backends.tensorrt`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from nnship.core import Batch, OpenedRunner, runtime_spec
from nnship.core.errors import BackendError, require


def cuda_unavailable_reason(device_index: int = 0) -> str:
    """Why no CUDA GPU can be used ("" when device `device_index` is usable)."""
    import torch

    if not torch.cuda.is_available():
        return "no CUDA GPU is visible (torch.cuda.is_available() is False)"
    if device_index >= torch.cuda.device_count():
        return f"CUDA device {device_index} does not exist ({torch.cuda.device_count()} visible)"
    return ""


def _device_for(device_index: int) -> Any:
    """The torch device engine inputs and outputs live on."""
    import torch

    return torch.device("cuda", device_index)


_TORCH_DTYPES = {
    "float32": "float32",
    "float16": "float16",
    "int32": "int32",
    "int64": "int64",
    "int8": "int8",
    "uint8": "uint8",
    "bool": "bool",
}


class _CudaStream:
    """The CUDA stream the runner enqueues on (a seam: tests substitute a host stream)."""

    def __init__(self, device: Any) -> None:
        import torch

        self._torch = torch
        self.stream = torch.cuda.Stream(device=device)

    @property
    def handle(self) -> int:
        return int(self.stream.cuda_stream)

    def wait_for_current(self) -> None:
        """Order this stream after the work (host-to-device copies) queued on torch's stream."""
        self.stream.wait_stream(self._torch.cuda.current_stream(self.stream.device))

    def synchronize(self) -> None:
        self.stream.synchronize()


class TensorRtRunner(OpenedRunner):
    """Runs a serialized TensorRT engine on a CUDA GPU with `execute_async_v3`.

    `run(batch)` copies numpy inputs to the GPU and outputs back; `run_torch(tensors)` works
    on torch CUDA tensors without host copies. Input shapes are set per call
    (`set_input_shape`), so one engine serves every shape its profile allows.
    """

    def __init__(
        self,
        engine_path: Path | str,
        *,
        device_index: int = 0,
        output_names: list[str] | None = None,
    ) -> None:
        trt = require("tensorrt", "tensorrt", "running TensorRT engines")
        reason = cuda_unavailable_reason(device_index)
        if reason:
            raise BackendError(f"Cannot run TensorRT engine '{engine_path}': {reason}")
        import torch

        self._torch = torch
        self._device = _device_for(device_index)
        self._stream = _CudaStream(self._device)
        self.name = f"tensorrt:cuda:{device_index}"
        self._setup(trt, Path(engine_path), output_names)

    def _setup(self, trt: Any, engine_path: Path, output_names: list[str] | None) -> None:
        if not engine_path.is_file():
            raise BackendError(f"TensorRT engine '{engine_path}' does not exist")
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if self._engine is None:
            raise BackendError(
                f"TensorRT could not load '{engine_path}': engines only load on the TensorRT "
                "version and GPU model they were built with; rebuild it from the build kit"
            )
        self._context = self._engine.create_execution_context()
        inputs, outputs = [], []
        for i in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(i)
            dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(name))).name
            shape = [int(d) for d in self._engine.get_tensor_shape(name)]
            spec = runtime_spec(name, shape, dtype, batch_name="batch")
            if self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                inputs.append(spec)
            else:
                outputs.append(spec)
        self._inputs, self._output_specs = inputs, outputs
        names = [s.name for s in outputs]
        self._outputs = (
            list(output_names) if output_names and len(output_names) == len(names) else names
        )

    def run_torch(self, tensors: dict[str, Any]) -> dict[str, Any]:
        """Execute on torch tensors already on the runner's device; returns torch tensors
        (on the device) by output name. Inputs must match the engine's dtypes."""
        torch = self._torch
        for spec in self._inputs:
            tensor = tensors[spec.name]
            if str(tensor.dtype).removeprefix("torch.") != _TORCH_DTYPES[spec.dtype]:
                raise BackendError(
                    f"Input '{spec.name}' is {tensor.dtype}; the engine expects {spec.dtype}"
                )
            tensor = tensor.contiguous()
            tensors[spec.name] = tensor
            if not self._context.set_input_shape(spec.name, tuple(tensor.shape)):
                raise BackendError(
                    f"Input '{spec.name}' shape {tuple(tensor.shape)} is outside the engine's "
                    "optimization profile; rebuild with a wider --shapes range"
                )
            self._context.set_tensor_address(spec.name, tensor.data_ptr())
        outputs = {}
        for spec in self._output_specs:
            shape = tuple(self._context.get_tensor_shape(spec.name))
            out = torch.empty(shape, dtype=getattr(torch, spec.dtype), device=self._device)
            self._context.set_tensor_address(spec.name, out.data_ptr())
            outputs[spec.name] = out
        self._stream.wait_for_current()
        if not self._context.execute_async_v3(self._stream.handle):
            raise BackendError(f"TensorRT execution failed in {self.name}")
        self._stream.synchronize()
        return {name: outputs[spec.name] for name, spec in zip(self._outputs, self._output_specs)}

    def _run_impl(self, batch: Batch) -> dict[str, np.ndarray]:
        torch = self._torch
        tensors = {
            spec.name: torch.from_numpy(np.ascontiguousarray(batch[spec.name])).to(self._device)
            for spec in self._inputs
        }
        return {name: t.cpu().numpy() for name, t in self.run_torch(tensors).items()}

    def _close_impl(self) -> None:
        self._context = None
        self._engine = None
        self._runtime = None
