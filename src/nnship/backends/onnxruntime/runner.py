"""ONNX Runtime: the first backend. `OnnxRuntimeRunner` runs an ONNX model (float, FP16 or QDQ)
through an InferenceSession; `OnnxRuntimeBackend` turns an ONNX file into an artifact directory
holding the model and ONNX Runtime's optimized copy of it.

`onnxruntime` is a core dependency, but it is still imported lazily so that `import nnship`
stays light.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from nnship.core import (
    Batch,
    OpenedRunner,
    TensorSpec,
    normalize_dtype,
    runtime_spec,
)
from nnship.core.errors import BackendError, OnnxModelError
from nnship.core.fileio import atomic_path
from nnship.onnx.graph import add_outputs, load_onnx

log = logging.getLogger(__name__)

GRAPH_OPTIMIZATIONS = ("disabled", "basic", "extended", "all")
"""Accepted `graph_optimization` levels ("disable" is accepted as an alias of "disabled")."""

_PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "gpu": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "dml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
}
_DEVICES = {"CUDAExecutionProvider": "cuda", "TensorrtExecutionProvider": "cuda"}
# ONNX Runtime type strings that do not read as numpy dtypes after stripping "tensor(...)".
_ORT_TYPES = {"float": "float32", "double": "float64"}


def _ort() -> Any:
    import onnxruntime

    return onnxruntime


def resolve_providers(providers: Sequence[str] | None) -> list[str]:
    """Full execution-provider names in priority order, CPU always last.

    Short names are accepted ("cpu", "cuda", "tensorrt", "openvino"). Asking for a provider
    this onnxruntime build does not have raises `BackendError` listing the available ones.
    """
    available = _ort().get_available_providers()
    wanted: list[str] = []
    for raw in providers or ["CPUExecutionProvider"]:
        name = _PROVIDER_ALIASES.get(str(raw).lower(), str(raw))
        if name not in available:
            raise BackendError(
                f"ONNX Runtime execution provider '{raw}' is not available in this onnxruntime "
                f"build; available: {', '.join(available)} (CUDA/TensorRT need the "
                "onnxruntime-gpu package)"
            )
        if name not in wanted:
            wanted.append(name)
    if "CPUExecutionProvider" not in wanted:
        wanted.append("CPUExecutionProvider")
    return wanted


def _optimization_level(level: str) -> Any:
    ort = _ort()
    key = {"disable": "disabled", "none": "disabled"}.get(level.lower(), level.lower())
    levels = {
        "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    if key not in levels:
        raise BackendError(
            f"Unknown ONNX Runtime graph_optimization '{level}'; choose one of "
            f"{', '.join(GRAPH_OPTIMIZATIONS)}"
        )
    return levels[key]


def _numpy_dtype(ort_type: str, tensor: str) -> str:
    inner = ort_type.removeprefix("tensor(").removesuffix(")")
    try:
        return normalize_dtype(_ORT_TYPES.get(inner, inner))
    except Exception as exc:  # bfloat16, string, ... have no numpy dtype nnship can feed
        raise BackendError(
            f"Tensor '{tensor}' has ONNX Runtime type {ort_type}, which nnship cannot feed "
            "from numpy"
        ) from exc


def _spec(arg: Any) -> TensorSpec:
    return runtime_spec(arg.name, arg.shape or [], _numpy_dtype(arg.type, arg.name))


class OnnxRuntimeRunner(OpenedRunner):
    """Runs an ONNX model with ONNX Runtime.

    - `path`: the .onnx file (external data beside it is found by ONNX Runtime); an in-memory
      `onnx.ModelProto` or serialized bytes are accepted too (used by export verification).
    - `threads`: intra-op threads; None lets ONNX Runtime choose (one per physical core).
    - `inter_op_threads`: threads running independent nodes in parallel; None or 1 keeps
      sequential execution (ORT_SEQUENTIAL, the faster mode for typical CNN/transformer graphs).
    - `graph_optimization`: "all" (default), "extended", "basic" or "disabled".
    - `providers`: execution providers in priority order (default CPU only); CPU is always
      appended as the fallback. A provider that is absent, or present but failing to
      initialise, is a `BackendError` rather than a silent fall back to CPU.
    - `optimized_model_path`: where to save ONNX Runtime's optimized graph (atomically). With
      "all" the saved graph may hold CPU-specific fused ops: run it on the same kind of machine.
    - `extra_outputs`: intermediate tensor names to expose as additional outputs
      (calibration, per-layer drift).
    - `allow_spinning`: let idle intra-op threads spin (ONNX Runtime's own default is on).
      Default False: nnship interleaves runners (torch baseline, ONNX Runtime, OpenVINO) in one
      process, and spinning threads would keep cores busy after each run and slow the others
      down; turn it on for a dedicated serving process.
    """

    def __init__(
        self,
        path: Path | str | onnx.ModelProto | bytes,
        *,
        threads: int | None = None,
        inter_op_threads: int | None = None,
        graph_optimization: str = "all",
        providers: Sequence[str] | None = None,
        optimized_model_path: Path | str | None = None,
        extra_outputs: Sequence[str] | None = None,
        allow_spinning: bool = False,
    ) -> None:
        ort = _ort()
        for label, value in (("threads", threads), ("inter_op_threads", inter_op_threads)):
            if value is not None and value < 1:
                raise BackendError(f"ONNX Runtime {label} must be >= 1, got {value}")
        self.providers = resolve_providers(providers)
        self.path = path if isinstance(path, Path | str) else None
        where = f"'{self.path}'" if self.path is not None else "in-memory model"
        model_arg = self._model_arg(path, extra_outputs)
        options = ort.SessionOptions()
        options.graph_optimization_level = _optimization_level(graph_optimization)
        if threads is not None:
            options.intra_op_num_threads = threads
        parallel = inter_op_threads is not None and inter_op_threads > 1
        options.execution_mode = (
            ort.ExecutionMode.ORT_PARALLEL if parallel else ort.ExecutionMode.ORT_SEQUENTIAL
        )
        if inter_op_threads is not None:
            options.inter_op_num_threads = inter_op_threads
        options.add_session_config_entry(
            "session.intra_op.allow_spinning", "1" if allow_spinning else "0"
        )
        options.log_severity_level = 3  # errors only; ORT's warnings are mostly about fusions
        self.graph_optimization = graph_optimization
        self.threads = threads
        if optimized_model_path is not None:
            # ORT writes the optimized model itself while creating the session: point it at a
            # temporary name and rename once the session exists.
            with atomic_path(Path(optimized_model_path)) as tmp:
                options.optimized_model_filepath = str(tmp)
                self._session = self._create(model_arg, options, where)
        else:
            self._session = self._create(model_arg, options, where)
        self._check_providers(where)
        self._inputs = [_spec(arg) for arg in self._session.get_inputs()]
        self._outputs = [arg.name for arg in self._session.get_outputs()]
        device = self._session.get_providers()[0]
        self.name = f"onnxruntime:{_DEVICES.get(device, 'cpu')}"

    @staticmethod
    def _model_arg(
        path: Path | str | onnx.ModelProto | bytes, extra_outputs: Sequence[str] | None
    ) -> str | bytes:
        if isinstance(path, bytes):
            model: onnx.ModelProto | None = None
            if extra_outputs:
                model = onnx.load_from_string(path)
            else:
                return path
        elif isinstance(path, onnx.ModelProto):
            model = path
        else:
            if not Path(path).is_file():
                raise OnnxModelError(f"ONNX file '{path}' does not exist")
            if not extra_outputs:
                return str(path)
            model = load_onnx(path)
        if extra_outputs:
            model = add_outputs(model, list(extra_outputs))
        return model.SerializeToString()

    def _create(self, model: str | bytes, options: Any, where: str) -> Any:
        ort = _ort()
        try:
            return ort.InferenceSession(model, sess_options=options, providers=self.providers)
        except Exception as exc:  # ORT raises Fail/InvalidGraph/NotImplemented/RuntimeError
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BackendError(f"ONNX Runtime cannot load {where}: {first}") from exc

    def _check_providers(self, where: str) -> None:
        active = self._session.get_providers()
        missing = [p for p in self.providers if p not in active]
        if missing:
            raise BackendError(
                f"ONNX Runtime could not initialise {', '.join(missing)} for {where} (active: "
                f"{', '.join(active)}); check the CUDA/TensorRT libraries, or ask for the CPU"
            )

    @property
    def session(self) -> Any:
        """The underlying `onnxruntime.InferenceSession`."""
        return self._session

    def _run_impl(self, batch: Batch) -> dict[str, np.ndarray]:
        if self._session is None:
            raise BackendError(f"{self.name}: the runner was closed")
        feeds = {spec.name: batch[spec.name] for spec in self._inputs}
        try:
            values = self._session.run(self._outputs, feeds)
        except Exception as exc:  # shape errors inside the graph, kernel failures
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BackendError(f"ONNX Runtime failed running {self.name}: {first}") from exc
        return dict(zip(self._outputs, values))

    def _close_impl(self) -> None:
        self._session = None
