"""TensorRT backend (TensorRT 10 and 11): a build kit always, an engine where a GPU exists.

`TensorRtBackend.compile` lints the ONNX (`check_tensorrt`), derives optimization profiles
from its dynamic dimensions and the recipe, writes the build kit (`nnship.backends.buildkit`)
and, when TensorRT and a CUDA GPU are present, builds the engine with the kit's own code
(`nnship.backends.tensorrt_engine`): strongly typed network, explicit quantization from Q/DQ
nodes, workspace limit, timing cache reused across builds. `TensorRtRunner` executes an engine
with `execute_async_v3` on torch CUDA tensors.

TensorRT is imported lazily (`pip install 'nnship[tensorrt]'`); importing this module never
needs it.
"""

from __future__ import annotations

import importlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from nnship.backends import buildkit
from nnship.backends.config import TensorRtOptions, resolve_backend_options
from nnship.backends.tensorrt_check import check_tensorrt, summarize
from nnship.backends.tensorrt_engine import BuildFailed, build_serialized, write_atomic
from nnship.core import Artifact, Backend, Batch, Runner, TensorSpec
from nnship.errors import BackendError, require
from nnship.fileio import ensure_writable_dir, sha256_file, write_json_atomic
from nnship.onnx_utils import load_onnx, onnx_input_specs, onnx_output_names, onnx_precision

log = logging.getLogger(__name__)

ARTIFACT_FILE = "artifact.json"


def resolve_options(options: TensorRtOptions | None = None, **overrides: Any) -> TensorRtOptions:
    """`options` (default `TensorRtOptions()`) with non-None keyword overrides applied;
    raises `BackendError` naming the bad option."""
    return resolve_backend_options(TensorRtOptions, "tensorrt", options, **overrides)


def cuda_unavailable_reason(device_index: int = 0) -> str:
    """Why no CUDA GPU can be used ("" when device `device_index` is usable)."""
    import torch

    if not torch.cuda.is_available():
        return "no CUDA GPU is visible (torch.cuda.is_available() is False)"
    if device_index >= torch.cuda.device_count():
        return f"CUDA device {device_index} does not exist ({torch.cuda.device_count()} visible)"
    return ""


def tensorrt_unavailable_reason(device_index: int = 0) -> str:
    """Why an engine cannot be built or run here ("" when TensorRT and the GPU are usable)."""
    try:
        importlib.import_module("tensorrt")
    except ImportError:
        return "TensorRT is not installed (pip install 'nnship[tensorrt]')"
    return cuda_unavailable_reason(device_index)


def _select_gpu(device_index: int) -> str:
    """Make `device_index` the current CUDA device (TensorRT builds on it); returns its name."""
    import torch

    torch.cuda.set_device(device_index)
    return torch.cuda.get_device_name(device_index)


def _device_for(device_index: int) -> Any:
    """The torch device engine inputs and outputs live on."""
    import torch

    return torch.device("cuda", device_index)


class TensorRtBackend(Backend):
    """ONNX -> TensorRT build kit (always) + serialized engine (where TensorRT and a GPU are)."""

    name = "tensorrt"

    def compile(
        self,
        onnx_path: Path,
        out_dir: Path,
        *,
        precision: str | None = None,
        options: TensorRtOptions | None = None,
        **overrides: Any,
    ) -> Artifact:
        """Lint, write the build kit into `out_dir`, and build `model.engine` when possible.

        TensorRT networks are strongly typed, so the precision comes from the ONNX (QDQ ->
        "int8", FP16 weights -> "fp16", else "fp32"); asking for another raises `BackendError`.
        Keyword arguments override `options` fields (workspace_mb, build_engine, ...).
        The artifact's `path` is the engine when built, else the kit directory.
        """
        opts = resolve_options(options, **overrides)
        onnx_path = Path(onnx_path)
        model = load_onnx(onnx_path)
        detected = onnx_precision(model)
        if precision is not None and precision.lower() != detected:
            raise BackendError(
                f"TensorRT builds strongly typed networks: precision comes from the ONNX. "
                f"'{onnx_path}' is {detected}, not {precision}; make a {precision} ONNX first "
                f"(nnship quantize --precision {precision})"
            )
        findings = check_tensorrt(model)
        errors = [f for f in findings if f.severity == "error"]
        for finding in findings:
            if finding.severity != "error":
                log.warning("TensorRT check: %s", finding)
        if errors:
            raise BackendError(
                f"'{onnx_path}' would be rejected by TensorRT ({len(errors)} problem(s); "
                f"all of them: nnship check --target tensorrt {onnx_path}):\n  " + summarize(errors)
            )
        specs = onnx_input_specs(model)
        spec = buildkit.BuildSpec(
            onnx=onnx_path.name,
            precision=detected,
            inputs=[s.to_dict() for s in specs],
            profiles=buildkit.derive_profiles(specs, opts),
            workspace_mb=opts.workspace_mb,
            builder_optimization_level=opts.builder_optimization_level,
        )
        out_dir = ensure_writable_dir(Path(out_dir))
        stale = out_dir / ARTIFACT_FILE
        if stale.exists():
            stale.unlink()
        files = buildkit.write_build_kit(onnx_path, out_dir, spec)
        engine_path, why_not, built_with = self._maybe_build(spec, out_dir, opts)
        if engine_path is not None:
            files.append(engine_path)
        metadata = {
            "engine_built": engine_path is not None,
            "engine_skipped_reason": why_not,
            "build_spec": spec.to_dict(),
            "trtexec": " ".join(buildkit.trtexec_command(spec)),
            "output_names": onnx_output_names(model),
            "options": opts.model_dump(mode="json"),
            **built_with,
        }
        artifact = Artifact(
            path=engine_path if engine_path is not None else out_dir,
            backend=self.name,
            precision=detected,
            device=f"cuda:{opts.device_index}",
            files=[*files, out_dir / ARTIFACT_FILE],
            source_hashes={str(onnx_path): sha256_file(onnx_path)},
            metadata=metadata,
        )
        write_json_atomic(out_dir / ARTIFACT_FILE, artifact.to_dict())
        return artifact

    @staticmethod
    def _maybe_build(
        spec: buildkit.BuildSpec, out_dir: Path, opts: TensorRtOptions
    ) -> tuple[Path | None, str, dict[str, Any]]:
        if opts.build_engine == "never":
            return None, "build_engine = 'never'", {}
        reason = tensorrt_unavailable_reason(opts.device_index)
        if reason:
            if opts.build_engine == "always":
                raise BackendError(
                    f"Cannot build a TensorRT engine here: {reason}. The build kit is in "
                    f"'{out_dir}': run {buildkit.TRTEXEC_FILE} or {buildkit.SCRIPT_FILE} on "
                    "the target device"
                )
            log.info("TensorRT engine not built (%s); build kit written to %s", reason, out_dir)
            return None, reason, {}
        trt = require("tensorrt", "tensorrt", "building TensorRT engines")
        gpu = _select_gpu(opts.device_index)
        kit_cache = out_dir / (spec.timing_cache or buildkit.TIMING_CACHE_FILE)
        cache = Path(opts.timing_cache) if opts.timing_cache else kit_cache
        try:
            engine, cache_bytes = build_serialized(
                spec.to_dict(), out_dir, trt=trt, timing_cache=cache
            )
        except BuildFailed as exc:
            raise BackendError(str(exc)) from exc
        engine_path = out_dir / spec.engine
        write_atomic(engine_path, engine)
        if cache_bytes is not None:
            ensure_writable_dir(cache.parent)
            write_atomic(cache, cache_bytes)
        info = {"tensorrt_version": getattr(trt, "__version__", "unknown"), "gpu": gpu}
        log.info("TensorRT engine written to %s (%d bytes, %s)", engine_path, len(engine), gpu)
        return engine_path, "", info

    def load(self, artifact: Artifact | Path | str, **options: Any) -> TensorRtRunner:
        """Open an artifact, a compile output directory, or a `.engine` file as a Runner."""
        if not isinstance(artifact, Artifact):
            artifact = load_artifact(artifact)
        engine = Path(artifact.path)
        if engine.is_dir() or not artifact.metadata.get("engine_built", engine.is_file()):
            why = artifact.metadata.get("engine_skipped_reason") or "it was not built"
            raise BackendError(
                f"No TensorRT engine in '{engine}' ({why}). Build it on the target device with "
                f"'{buildkit.TRTEXEC_FILE}' or 'python3 {buildkit.SCRIPT_FILE}' from the kit, "
                "then load the .engine file"
            )
        device_index = int(
            options.pop("device_index", artifact.metadata.get("options", {}).get("device_index", 0))
        )
        if options:
            raise BackendError(f"Unknown TensorRT runner option(s): {sorted(options)}")
        return TensorRtRunner(
            engine,
            device_index=device_index,
            output_names=artifact.metadata.get("output_names"),
        )


def load_artifact(path: Path | str) -> Artifact:
    """A TensorRT Artifact from a compile output directory, its `artifact.json`, or an
    `.engine` file."""
    path = Path(path)
    meta = path / ARTIFACT_FILE if path.is_dir() else path.with_name(ARTIFACT_FILE)
    if path.is_dir() or path.name == ARTIFACT_FILE:
        if not meta.is_file():
            raise BackendError(f"'{path}' holds no {ARTIFACT_FILE}; compile it first")
        try:
            artifact = Artifact.from_dict(json.loads(meta.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError) as exc:
            raise BackendError(f"'{meta}' is not a readable nnship artifact file: {exc}") from exc
        if artifact.backend != "tensorrt":
            raise BackendError(f"'{meta}' is a {artifact.backend} artifact, not a TensorRT one")
        built = artifact.metadata.get("engine_built")
        engine_name = artifact.metadata.get("build_spec", {}).get("engine", buildkit.ENGINE_FILE)
        artifact.path = meta.parent / engine_name if built else meta.parent
        return artifact
    if not path.is_file():
        raise BackendError(f"TensorRT engine '{path}' does not exist")
    return Artifact(path=path, backend="tensorrt", precision="unknown", device="cuda:0")


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


class TensorRtRunner(Runner):
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
            shape = tuple(self._engine.get_tensor_shape(name))
            dims = tuple(
                int(d) if d >= 0 else ("batch" if a == 0 else f"{name}_dim{a}")
                for a, d in enumerate(shape)
            )
            spec = TensorSpec(name, dims, dtype)
            if self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                inputs.append(spec)
            else:
                outputs.append(spec)
        self._inputs, self._output_specs = inputs, outputs
        names = [s.name for s in outputs]
        self._names = (
            list(output_names) if output_names and len(output_names) == len(names) else names
        )

    @property
    def input_specs(self) -> list[TensorSpec]:
        return list(self._inputs)

    @property
    def output_names(self) -> list[str]:
        return list(self._names)

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
        return {name: outputs[spec.name] for name, spec in zip(self._names, self._output_specs)}

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
