"""The validation stage of `nnship build`: every artifact against the float baseline.

The baseline is the float PyTorch module the recipe loaded (before pruning/distillation), or
the float ONNX when the source is an ONNX file. Every (backend, precision) artifact is one row
of one report; what the quantizer kept in float, and why, is attached to its row.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnship.core import Artifact, DataSource, Runner, TensorSpec

if TYPE_CHECKING:
    from nnship.build_pipeline import Pipeline

log = logging.getLogger("nnship.build")

MAX_FLOAT_NODE_NOTES = 20
"""Float-node reasons listed per row in the notes; the full list is in the row's `extra`."""


def _baseline(loaded: Any, float_onnx: Path, specs: list[TensorSpec]) -> tuple[Runner, str]:
    if getattr(loaded, "module", None) is not None:
        from nnship.backends.torch_runner import TorchRunner

        return TorchRunner(loaded.module, specs), "torch/fp32"
    from nnship.backends.onnxruntime import OnnxRuntimeRunner

    return OnnxRuntimeRunner(float_onnx), "onnx/fp32"


def run_validation(
    pipeline: Pipeline,
    loaded: Any,
    float_onnx: Path,
    specs: list[TensorSpec],
    evaluation: DataSource,
    artifacts: list[tuple[Artifact, dict[str, Any]]],
) -> Any:
    """Validate every artifact; returns the `Report` (not yet saved)."""
    from nnship.backends import get_backend
    from nnship.backends.compile import runner_options
    from nnship.validate.latency import timed_load
    from nnship.validate.validate import validate

    with contextlib.ExitStack() as stack:
        baseline, base_label = _baseline(loaded, float_onnx, specs)
        stack.callback(baseline.close)
        candidates: dict[str, Runner] = {}
        by_label: dict[str, Artifact] = {}
        cold: dict[str, Any] = {}
        for artifact, _ in artifacts:
            if artifact.backend == "tensorrt" and not artifact.metadata.get("engine_built"):
                why = artifact.metadata.get("engine_skipped_reason") or "no engine was built"
                pipeline.notes.append(
                    f"{artifact.label}: build kit written to {Path(artifact.path).parent}, "
                    f"not validated here ({why})"
                )
                continue
            backend = get_backend(artifact.backend)
            options = runner_options(artifact.backend, pipeline.recipe.backends)
            runner, ms, memory = timed_load(lambda b=backend, a=artifact, o=options: b.load(a, **o))
            stack.callback(runner.close)
            candidates[artifact.label] = runner
            by_label[artifact.label] = artifact
            cold[artifact.label] = (ms, memory)
        report = validate(
            baseline,
            candidates,
            evaluation,
            config=pipeline.recipe.validation,
            artifacts=by_label,
            baseline_label=base_label,
            model_source=pipeline.recipe.model.source,
            model_fingerprint=getattr(loaded, "fingerprint", None),
            cold_start=cold,
        )
    _annotate(pipeline, report, artifacts)
    pipeline._mark("validate", "ran")
    return report


def _annotate(
    pipeline: Pipeline, report: Any, artifacts: list[tuple[Artifact, dict[str, Any]]]
) -> None:
    """Attach what the build knows beyond the validator: quantizer decisions per row, the
    compression summary, the export check, stage reuse, and the resolved recipe."""
    for artifact, info in artifacts:
        if not info:
            continue
        row = report.row(artifact.label)
        row.extra["quantize"] = info
        nodes = info.get("float_nodes", [])
        for node in nodes[:MAX_FLOAT_NODE_NOTES]:
            row.notes.append(f"kept in float: {node['name']} ({node['op_type']}): {node['reason']}")
        if len(nodes) > MAX_FLOAT_NODE_NOTES:
            row.notes.append(f"... and {len(nodes) - MAX_FLOAT_NODE_NOTES} more float nodes")
        for reverted in info.get("reverted", []):
            row.notes.append(f"reverted to float by the accuracy fallback: {reverted.get('node')}")
        for key in ("opset_conversion", "subnormals"):
            summary = info.get("details", {}).get(key, {}).get("summary")
            if summary and summary != "no subnormal float weights":
                row.notes.append(f"quantize: {summary}")
        if info.get("int8_mode") == "nncf":
            row.notes.append("INT8 made by NNCF from the float model (OpenVINO int8_mode nncf)")
    report.notes.extend(pipeline.notes)
    report.extra["build"] = {
        "name": pipeline.recipe.name,
        "recipe": pipeline.recipe.to_dict(),
        "recipe_path": str(pipeline.recipe.path) if pipeline.recipe.path else None,
        "stages": dict(pipeline.stages),
        "export": getattr(pipeline, "export_info", None),
        "compress": getattr(pipeline, "compress_info", None),
    }
