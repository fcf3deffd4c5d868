"""OpenVINO runtime side: options, device checks, compile config and `OpenVinoRunner`.

The compile side (ONNX -> IR artifacts) is `nnship.backends.openvino`, which re-exports these.
OpenVINO is imported lazily (`pip install 'nnship[openvino]'`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nnship.backends.openvino.options import OpenVinoOptions
from nnship.core import Batch, OpenedRunner, TensorSpec, resolve_backend_options, runtime_spec
from nnship.core.errors import BackendError, require
from nnship.core.fileio import ensure_writable_dir

_VIRTUAL_DEVICES = ("AUTO", "MULTI", "HETERO", "BATCH")


def _ov() -> Any:
    return require("openvino", "openvino", "the OpenVINO backend")


def resolve_options(options: OpenVinoOptions | None = None, **overrides: Any) -> OpenVinoOptions:
    """`options` (default `OpenVinoOptions()`) with keyword overrides applied and validated.

    Overrides that are None are ignored, so CLI flags left unset keep the recipe's values.
    Raises `BackendError` naming the bad option.
    """
    return resolve_backend_options(OpenVinoOptions, "openvino", options, **overrides)


def check_device(core: Any, device: str) -> str:
    """Raise `BackendError` listing the available devices unless OpenVINO has `device`.

    Virtual devices (AUTO, MULTI, HETERO, BATCH) are accepted when every device they name
    exists ("AUTO" alone always is). Returns the device name, upper-cased.
    """
    device = device.upper()
    available = list(core.available_devices)
    head, _, rest = device.partition(":")
    if head in _VIRTUAL_DEVICES:
        wanted = [d.strip() for d in rest.split(",") if d.strip()]
    else:
        wanted = [device]
    for name in wanted:
        family = name.split(".")[0]
        if name not in available and not (
            name == family and any(a.split(".")[0] == family for a in available)
        ):
            raise BackendError(
                f"OpenVINO device '{name}' is not available on this machine; available devices: "
                f"{', '.join(available) or 'none'} (or AUTO)"
            )
    return device


BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
"""/proc/cpuinfo flags of x86 CPUs with native bf16 arithmetic (AVX512-BF16 dot products, AMX
tiles); OpenVINO's CPU plugin reports "BF16" in OPTIMIZATION_CAPABILITIES only with one."""


def device_capabilities(core: Any, device: str) -> list[str]:
    """OpenVINO's OPTIMIZATION_CAPABILITIES of `device` ("FP32", "BF16", "INT8", ...); empty
    when the device does not report them."""
    try:
        return [str(c) for c in core.get_property(device, "OPTIMIZATION_CAPABILITIES")]
    except Exception:  # virtual devices (AUTO, MULTI) have no such property
        return []


def check_bf16(core: Any, device: str) -> list[str]:
    """Raise `BackendError` unless `device` computes in bf16 natively; returns its capabilities.

    OpenVINO's own answer decides ("BF16" in OPTIMIZATION_CAPABILITIES); the message names the
    CPU flags that are missing (`BF16_CPU_FLAGS`) so the user sees why.
    """
    from nnship.core.environment import cpu_model_and_flags

    caps = device_capabilities(core, device)
    if "BF16" in caps:
        return caps
    model, flags = cpu_model_and_flags()
    missing = [f for f in BF16_CPU_FLAGS if f not in flags]
    why = (
        f"the CPU '{model}' has neither {' nor '.join(missing)}"
        if device.startswith("CPU") and missing
        else f"OpenVINO reports no BF16 capability for {device}"
    )
    raise BackendError(
        f"precision bf16 needs native bf16 arithmetic and {why} (OpenVINO "
        f"OPTIMIZATION_CAPABILITIES of {device}: {', '.join(caps) or 'none'}); use fp32, fp16 "
        "or int8 on this machine"
    )


def compile_config(options: OpenVinoOptions) -> dict[str, Any]:
    """The `Core.compile_model` config for `options`: performance hint, threads, streams,
    inference precision and model cache directory."""
    ov = _ov()
    import openvino.properties as props
    import openvino.properties.hint as hints

    mode = {
        "latency": hints.PerformanceMode.LATENCY,
        "throughput": hints.PerformanceMode.THROUGHPUT,
    }[options.hint]
    config: dict[str, Any] = {hints.performance_mode(): mode}
    on_cpu = options.device.startswith("CPU")
    if options.threads is not None and on_cpu:
        config[props.inference_num_threads()] = options.threads
    if options.num_streams is not None:
        config[props.num_streams()] = options.num_streams
    if options.inference_precision != "auto":
        config[hints.inference_precision()] = getattr(ov.Type, options.inference_precision)
    if options.cache_dir is not None:
        config[props.cache_dir()] = str(ensure_writable_dir(Path(options.cache_dir)))
    return config


def _spec_of(port: Any, name: str) -> TensorSpec:
    dims = [int(d.get_length()) if d.is_static else None for d in port.get_partial_shape()]
    dtype = np.dtype(port.get_element_type().to_dtype()).name
    return runtime_spec(name, dims, dtype, batch_name="batch")


def _input_name(port: Any) -> str:
    """The model's own name for an input port.

    A port can carry several tensor names (e.g. an FP16 ONNX's `x` and the fused
    `graph_input_cast_0`), and `get_any_name` picks one arbitrarily; the Parameter node's
    friendly name is the original graph input name, so it wins when it is among them.
    """
    friendly = port.get_node().get_friendly_name()
    return friendly if friendly in port.get_names() else port.get_any_name()


class OpenVinoRunner(OpenedRunner):
    """Runs an IR (`.xml`) or an ONNX file with OpenVINO on one device.

    - `device`: "CPU" (default), "GPU", "NPU", "AUTO", ...; an unknown device raises
      `BackendError` listing the available ones.
    - `hint`: "latency" (default) or "throughput"; `threads` (CPU inference threads, default
      OpenVINO's choice); `num_streams`; `cache_dir` (model cache, default off);
      `inference_precision`: "f32" by default so float drift is measured honestly.
    - `output_names`: the names to report outputs under (default: the model's tensor names);
      used to keep ONNX output names when OpenVINO gives a port several names.

    `run` uses one synchronous infer request; `run_throughput` drives an `AsyncInferQueue`.
    """

    def __init__(
        self,
        model_path: Path | str,
        *,
        options: OpenVinoOptions | None = None,
        output_names: Sequence[str] | None = None,
        **overrides: Any,
    ) -> None:
        ov = _ov()
        self.options = resolve_options(options, **overrides)
        self.path = Path(model_path)
        if not self.path.is_file():
            raise BackendError(f"OpenVINO model '{self.path}' does not exist")
        core = ov.Core()
        device = check_device(core, self.options.device)
        started = time.perf_counter()
        try:
            model = core.read_model(str(self.path))
            self._compiled = core.compile_model(model, device, compile_config(self.options))
        except RuntimeError as exc:
            raise BackendError(
                f"OpenVINO could not compile '{self.path}' for {device}: {exc}"
            ) from exc
        self.compile_s = time.perf_counter() - started
        """Seconds spent reading and compiling the model (cold start)."""
        self.name = f"openvino:{device}"
        self._ov = ov
        self._request = self._compiled.create_infer_request()
        self._inputs = [_spec_of(p, _input_name(p)) for p in self._compiled.inputs]
        self._bound: list[np.ndarray | None] = [None] * len(self._inputs)
        self._bound_shapes: list[tuple[int, ...]] = [()] * len(self._inputs)
        self._outputs = self._output_names(output_names)

    def _output_names(self, preferred: Sequence[str] | None) -> list[str]:
        names = []
        for i, port in enumerate(self._compiled.outputs):
            port_names = port.get_names()
            if preferred and i < len(preferred) and preferred[i] in port_names:
                names.append(preferred[i])
            elif preferred and len(preferred) == len(self._compiled.outputs):
                names.append(preferred[i])
            else:
                names.append(port.get_any_name() if port_names else f"output_{i}")
        return names

    @property
    def compiled_model(self) -> Any:
        """The underlying `openvino.CompiledModel` (for properties and advanced use)."""
        return self._compiled

    def _run_impl(self, batch: Batch) -> dict[str, np.ndarray]:
        # The lean path (measured ~10-30 us less per call than `InferRequest.infer(dict)`,
        # which matters when nnship's latency must match benchmark_app's): input tensors share
        # the arrays' memory and are re-bound only when a different array comes in;
        # start_async + wait avoids building a result dict; outputs are copied because the
        # next inference overwrites the request's buffers.
        request = self._request
        for i, spec in enumerate(self._inputs):
            array = batch[spec.name]
            bound = self._bound[i]
            if array is not bound or array.shape != self._bound_shapes[i]:
                contiguous = np.ascontiguousarray(array)
                request.set_input_tensor(i, self._ov.Tensor(contiguous, shared_memory=True))
                # Only an array used in place may be skipped next time (a copy would go stale).
                self._bound[i] = array if contiguous is array else None
                self._bound_shapes[i] = array.shape
        request.start_async()
        request.wait()
        return {
            name: np.array(request.get_output_tensor(i).data, copy=True)
            for i, name in enumerate(self._outputs)
        }

    def run_throughput(
        self, batch: Batch, *, duration_s: float = 2.0, num_requests: int | None = None
    ) -> dict[str, Any]:
        """Throughput with OpenVINO's `AsyncInferQueue`: keep `num_requests` requests in flight
        (default: the compiled model's optimal number, which the "throughput" hint raises)
        for `duration_s` seconds (default 2.0) on the same `batch`.

        Returns a JSON-serialisable dict: `num_requests`, `iterations`, `batch_size`,
        `duration_s`, `throughput_per_s` (samples per second) and `latency_ms` (p50/p90/p99/mean
        of OpenVINO's per-request latency, milliseconds).
        """
        from nnship.core import check_batch

        ov = _ov()
        check_batch(self._inputs, batch, where=f"inputs to {self.name}")
        if duration_s <= 0:
            raise BackendError(f"duration_s must be positive, got {duration_s}")
        inputs = {spec.name: np.ascontiguousarray(batch[spec.name]) for spec in self._inputs}
        batch_size = int(next(iter(inputs.values())).shape[0]) if inputs else 1
        queue = ov.AsyncInferQueue(self._compiled, int(num_requests or 0))
        # No Python callback on the queue: a Python callback's last reference can be dropped on
        # an OpenVINO worker thread, which then waits for the GIL while the main thread, holding
        # it, destroys the compiled model - a deadlock seen here on `close()`. The latency of a
        # request is read instead when it is next idle (`InferRequest.latency`, milliseconds).
        latencies: list[float] = []
        busy = [False] * len(queue)
        for _ in range(len(queue)):  # warm-up: one inference per request
            queue.start_async(inputs, share_inputs=True)
        queue.wait_all()
        iterations = 0
        started = time.perf_counter()
        while time.perf_counter() - started < duration_s:
            idle = queue.get_idle_request_id()  # blocks until a request is idle
            if busy[idle]:
                latencies.append(queue[idle].latency)
            queue.start_async(inputs, share_inputs=True)  # starts that idle request
            busy[idle] = True
            iterations += 1
        queue.wait_all()
        latencies.extend(queue[i].latency for i in range(len(queue)) if busy[i])
        elapsed = time.perf_counter() - started
        lat = np.asarray(latencies, dtype=np.float64)
        return {
            "num_requests": len(queue),
            "iterations": iterations,
            "batch_size": batch_size,
            "duration_s": elapsed,
            "throughput_per_s": iterations * batch_size / elapsed,
            "latency_ms": {
                "p50": float(np.percentile(lat, 50)),
                "p90": float(np.percentile(lat, 90)),
                "p99": float(np.percentile(lat, 99)),
                "mean": float(lat.mean()),
            },
        }

    def _close_impl(self) -> None:
        self._bound = [None] * len(self._inputs)
        self._request = None
        self._compiled = None
