"""TensorRT backend (TensorRT 10 and 11): a build kit always, an engine where a GPU exists.

`TensorRtBackend.compile` lints the ONNX (`check_tensorrt`), derives optimization profiles
from its dynamic dimensions and the recipe, writes the build kit (`nnship.backends.tensorrt.buildkit`)
and, when TensorRT and a CUDA GPU are present, builds the engine with the kit's own code
(`nnship.backends.tensorrt.engine`): strongly typed network, explicit quantization from Q/DQ
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

from nnship.backends.tensorrt import buildkit
from nnship.backends.tensorrt.check import check_tensorrt, summarize
from nnship.backends.tensorrt.engine import BuildFailed, build_serialized, write_atomic
from nnship.backends.tensorrt.options import TensorRtOptions
from nnship.backends.tensorrt.runner import TensorRtRunner, cuda_unavailable_reason
from nnship.core import Artifact, Backend, CompileInputs, resolve_backend_options
from nnship.core.errors import BackendError, require
from nnship.core.fileio import ensure_writable_dir, sha256_file
from nnship.onnx.graph import load_onnx, onnx_input_specs, onnx_output_names, onnx_precision

log = logging.getLogger(__name__)

__all__ = [
    "TensorRtBackend",
    "TensorRtRunner",
    "cuda_unavailable_reason",
    "load_artifact",
    "resolve_options",
    "tensorrt_unavailable_reason",
]

ARTIFACT_FILE = "artifact.json"


def resolve_options(options: TensorRtOptions | None = None, **overrides: Any) -> TensorRtOptions:
    """`options` (default `TensorRtOptions()`) with non-None keyword overrides applied;
    raises `BackendError` naming the bad option."""
    return resolve_backend_options(TensorRtOptions, "tensorrt", options, **overrides)


def tensorrt_unavailable_reason(device_index: int = 0) -> str:
    """Why an engine cannot be built or run here ("" when TensorRT and the GPU are usable)."""
    # looked up here (not in the runner module) so the builder's check can be substituted
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


class TensorRtBackend(Backend):
    """ONNX -> TensorRT build kit (always) + serialized engine (where TensorRT and a GPU are)."""

    name = "tensorrt"

    options_type = TensorRtOptions
    precisions = ("fp32", "int8", "fp16")
    artifact_file = ARTIFACT_FILE

    def _compile_impl(
        self,
        onnx_path: Path,
        out_dir: Path,
        options: TensorRtOptions,
        *,
        precision: str | None,
        inputs: CompileInputs,
    ) -> Artifact:
        """Lint, write the build kit into `out_dir`, and build `model.engine` when possible.

        TensorRT networks are strongly typed, so the precision comes from the ONNX (QDQ ->
        "int8", FP16 weights -> "fp16", else "fp32"); asking for another raises `BackendError`.
        The artifact's `path` is the engine when built, else the kit directory; `artifact.json`
        is written last by `Backend.compile`.
        """
        opts = options
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
