"""The validation stage of `nnship build`: every artifact against the float baseline.

The baseline is the float PyTorch module the recipe loaded (before pruning/distillation), or
the float ONNX when the source is an ONNX file. Every (backend, precision) artifact is one row
of one report; what the quantizer kept in float, and why, is attached to its row.

Contract: requires the loaded model, the export stage's result, the evaluation data and the
compile stage's artifacts; returns the `Report` (not saved; `save_report` writes
`report/report.json` and its Markdown). TensorRT build kits without an engine are noted, not
validated. Never cached: it measures latency on this machine.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

from nnship.core import DataSource, Runner, TensorSpec
from nnship.stages.compile import CompiledArtifact
from nnship.stages.context import StageContext
from nnship.stages.export import ExportStageResult

log = logging.getLogger("nnship.pipeline")

MAX_FLOAT_NODE_NOTES = 20
"""Float-node reasons listed per row in the notes; the full list is in the row's `extra`."""


def _baseline(loaded: Any, float_onnx: Path, specs: list[TensorSpec]) -> tuple[Runner, str]:
    if getattr(loaded, "module", None) is not None:
        from nnship.backends.torch_runner import TorchRunner

        return TorchRunner(loaded.module, specs), "torch/fp32"
    from nnship.backends.onnxruntime import OnnxRuntimeRunner

    return OnnxRuntimeRunner(float_onnx), "onnx/fp32"


def run_validation(
    ctx: StageContext,
    loaded: Any,
    export: ExportStageResult,
    evaluation: DataSource,
    artifacts: list[CompiledArtifact],
    compress_info: dict[str, Any] | None = None,
) -> Any:
    """Validate every artifact; returns the `Report` (not yet saved)."""
    from nnship.backends.compile import open_artifact
    from nnship.metrics.latency import timed_load
    from nnship.validate.validate import validate

    with contextlib.ExitStack() as stack:
        baseline, base_label = _baseline(loaded, export.onnx_path, export.input_specs)
        stack.callback(baseline.close)
        if ctx.baseline_cache:
            baseline = _cached_baseline(ctx, loaded, baseline, base_label, evaluation)
        candidates: dict[str, Runner] = {}
        by_label: dict[str, Any] = {}
        cold: dict[str, Any] = {}
        for compiled in artifacts:
            artifact = compiled.artifact
            if artifact.backend == "tensorrt" and not artifact.metadata.get("engine_built"):
                why = artifact.metadata.get("engine_skipped_reason") or "no engine was built"
                ctx.note(
                    f"{artifact.label}: build kit written to {Path(artifact.path).parent}, "
                    f"not validated here ({why})"
                )
                continue
            config = ctx.recipe.backends
            runner, ms, memory = timed_load(lambda a=artifact, c=config: open_artifact(a, config=c))
            stack.callback(runner.close)
            candidates[artifact.label] = runner
            by_label[artifact.label] = artifact
            cold[artifact.label] = (ms, memory)
        report = validate(
            baseline,
            candidates,
            evaluation,
            config=ctx.recipe.validation,
            artifacts=by_label,
            baseline_label=base_label,
            model_source=ctx.recipe.model.source,
            model_fingerprint=getattr(loaded, "fingerprint", None),
            cold_start=cold,
        )
    _annotate(ctx, report, artifacts, export.info, compress_info)
    ctx.mark("validate", "ran")
    return report


def _cached_baseline(
    ctx: StageContext, loaded: Any, baseline: Runner, label: str, evaluation: DataSource
) -> Runner:
    """The baseline's evaluation outputs, recorded once per (model, evaluation data) in the
    stage cache and replayed (`SavedOutputsRunner`): the tuner's trials share one baseline."""
    from nnship.core.data import first_samples
    from nnship.validate.outputs import OutputRecorder, SavedOutputsRunner, manifest_path

    cfg = ctx.recipe.validation
    data = first_samples(evaluation, cfg.max_samples)
    stage_dir = ctx.out / "baseline"
    path = stage_dir / "outputs.npz"
    inputs = {
        "model": getattr(loaded, "fingerprint", None),
        "runner": label,
        "data": data.fingerprint(),
        "batch_size": cfg.batch_size,
    }
    stamp, found = ctx.stamp(stage_dir, "baseline", inputs)
    if found is None:
        recorder = OutputRecorder(label, baseline, data_fingerprint=data.fingerprint())
        for item in data.iter_batches(cfg.batch_size):
            recorder.add(item.inputs, baseline.run(item.inputs), item.labels)
        recorder.save(path)
        stamp.record([path, manifest_path(path)], {})
        ctx.mark("baseline", "ran")
    else:
        ctx.mark("baseline", "reused")
    return SavedOutputsRunner(path)


def _annotate(
    ctx: StageContext,
    report: Any,
    artifacts: list[CompiledArtifact],
    export_info: dict[str, Any] | None,
    compress_info: dict[str, Any] | None,
) -> None:
    """Attach what the build knows beyond the validator: quantizer decisions per row, the
    compression summary, the export check, stage reuse, and the resolved recipe."""
    for compiled in artifacts:
        artifact, info = compiled.artifact, compiled.quantize_info
        labels = {row.label for row in report.rows}
        if not info or artifact.label not in labels:  # a TensorRT kit without engine: no row
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
    report.notes.extend(ctx.notes)
    report.extra["build"] = {
        "name": ctx.recipe.name,
        "recipe": ctx.recipe.to_dict(),
        "recipe_path": str(ctx.recipe.path) if ctx.recipe.path else None,
        "stages": dict(ctx.stages),
        "export": export_info,
        "compress": compress_info,
    }


def save_report(ctx: StageContext, report: Any) -> Path:
    """Write `report/report.json` (and the Markdown beside it); returns the JSON's path."""
    from nnship.validate.render.markdown import save_with_markdown

    path = ctx.out / "report" / "report.json"
    save_with_markdown(report, path)
    ctx.mark("report", "written")
    return path
