"""ONNX Runtime as a deployment target: the artifact is the model plus ONNX Runtime's optimized
copy of it; loading it gives an `OnnxRuntimeRunner`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from nnship.backends.onnxruntime.options import OnnxRuntimeOptions
from nnship.backends.onnxruntime.runner import (
    _DEVICES,
    OnnxRuntimeRunner,
    _ort,
)
from nnship.core import Artifact, Backend, CompileInputs
from nnship.core.errors import BackendError
from nnship.core.fileio import sha256_file
from nnship.onnx.graph import is_quantized, load_onnx, save_onnx
from nnship.onnx.subnormals import flush_subnormals

log = logging.getLogger(__name__)


class OnnxRuntimeBackend(Backend):
    """ONNX Runtime as a deployment target. `compile` copies the ONNX model into `out_dir` and
    saves ONNX Runtime's optimized graph beside it; `load` opens it as an `OnnxRuntimeRunner`.

    ONNX Runtime runs whatever precision the ONNX holds (float, FP16, QDQ INT8): producing those
    is the quantize stage's job, so "int8"/"dynamic-int8" require an already-quantized model.
    """

    name = "onnxruntime"

    options_type = OnnxRuntimeOptions
    precisions = ("fp32", "int8", "fp16", "dynamic-int8")
    _RUNNER_OPTIONS = tuple(OnnxRuntimeOptions.model_fields)

    def _compile_impl(
        self,
        onnx_path: Path,
        out_dir: Path,
        options: OnnxRuntimeOptions,
        *,
        precision: str | None,
        inputs: CompileInputs,
    ) -> Artifact:
        """Write `<out_dir>/<name>.onnx` and `<out_dir>/<stem>.ort.onnx` (the optimized graph).

        `options` are `OnnxRuntimeRunner` options (threads, inter_op_threads,
        graph_optimization (default "all"), providers, allow_spinning); they are recorded in
        the artifact and become `load`'s defaults. `precision` defaults to "fp32" (ONNX Runtime
        runs whatever the ONNX holds). The artifact's `source_hashes` holds the SHA-256 of the
        input ONNX file.
        """
        precision = precision or "fp32"
        if precision == "bf16":
            raise BackendError(
                "ONNX Runtime has no bf16 precision on CPU (its CPU execution provider has no "
                "bf16 Conv/MatMul kernels on x86; its bf16 fast-math is an Arm64 GEMM option): "
                "bf16 is an OpenVINO precision, compile with --backend openvino --precision bf16"
            )
        model = load_onnx(onnx_path)
        if precision in ("int8", "dynamic-int8") and not is_quantized(model):
            raise BackendError(
                f"'{onnx_path}' holds no quantized ops but precision '{precision}' was asked; "
                "run `nnship quantize` first and compile its output"
            )
        target = out_dir / onnx_path.name
        model, subnormals = flush_subnormals(model)
        if subnormals.flushed and target.resolve() == onnx_path.resolve():
            target = out_dir / f"{onnx_path.stem}.ftz.onnx"  # never rewrite the user's file
        if subnormals.flushed or target.resolve() != onnx_path.resolve():
            save_onnx(model, target)
        optimized = out_dir / f"{target.stem}.ort.onnx"
        runner_kwargs = {k: v for k, v in options.model_dump().items() if v is not None}
        runner = OnnxRuntimeRunner(target, optimized_model_path=optimized, **runner_kwargs)
        try:
            specs = [s.to_dict() for s in runner.input_specs]
            outputs = runner.output_names
            providers = runner.providers
        finally:
            runner.close()
        ort = _ort()
        return Artifact(
            path=target,
            backend=self.name,
            precision=precision,
            device=_DEVICES.get(providers[0], "cpu"),
            files=[target, optimized],
            source_hashes={onnx_path.name: sha256_file(onnx_path)},
            metadata={
                "onnxruntime_version": ort.__version__,
                "optimized_model": optimized.name,
                "inputs": specs,
                "outputs": outputs,
                **runner_kwargs,
                "providers": providers,
                "subnormals": subnormals.to_dict(),
                "notes": [subnormals.describe()] if subnormals.total else [],
            },
        )

    def load(self, artifact: Artifact | Path, **options: Any) -> OnnxRuntimeRunner:
        """Open an artifact (or an .onnx path) as an `OnnxRuntimeRunner`.

        Options default to those recorded at compile time. `use_optimized=True` loads the saved
        optimized graph with graph optimization disabled (faster start-up; same kind of machine
        only, see `OnnxRuntimeRunner`). Default False.
        """
        use_optimized = bool(options.pop("use_optimized", False))
        if isinstance(artifact, Artifact):
            recorded = {
                k: artifact.metadata[k] for k in self._RUNNER_OPTIONS if k in artifact.metadata
            }
            path = Path(artifact.path)
            if use_optimized and artifact.metadata.get("optimized_model"):
                path = path.parent / artifact.metadata["optimized_model"]
            merged = {**recorded, **options}
        else:
            path = Path(artifact)
            merged = dict(options)
        if use_optimized:
            merged["graph_optimization"] = "disabled"
        unknown = sorted(
            set(merged) - set(self._RUNNER_OPTIONS) - {"optimized_model_path", "extra_outputs"}
        )
        if unknown:
            raise BackendError(
                f"Unknown onnxruntime option(s) {unknown}; known: {list(self._RUNNER_OPTIONS)}"
            )
        return OnnxRuntimeRunner(path, **merged)
