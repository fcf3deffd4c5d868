"""The validation stage of `nnship build`: every artifact against the float baseline.

The baseline is the float PyTorch module the recipe loaded (before pruning/distillation), or
the float ONNX when the source is an ONNX file. Every (backend, precision) artifact is one row
of one report; what the quantizer kept in float, and why, goes into its row (`row_annotation`).

Contract: requires the loaded model, the export stage's result, the evaluation data and the
compile stage's artifacts; returns the `Report`, built complete by `validate` (the rows'
annotations, the build's notes and `extra["build"]` are handed to it; nothing edits the report
afterwards), not saved (`save_report` writes `report/report.json` and its Markdown). TensorRT build kits without an engine are noted, not
validated. Never cached: it measures latency on this machine.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnship.core import DataSource, Runner, TensorSpec
from nnship.stages.compile import CompiledArtifact
from nnship.stages.context import StageContext
from nnship.stages.export import ExportStageResult
from nnship.stages.quantize import QuantizedModel

if TYPE_CHECKING:
    from nnship.core import Artifact
    from nnship.metrics.results import MemoryStats
    from nnship.sources.models import LoadedModel
    from nnship.validate.report import Report
    from nnship.validate.validate import RowAnnotation

log = logging.getLogger("nnship.pipeline")

MAX_FLOAT_NODE_NOTES = 20
"""Float-node reasons listed per row in the notes; the full list is in the row's `extra`."""
NO_SUBNORMALS = "no subnormal float weights"
"""The subnormal flush's summary when it changed nothing: not worth a note."""


@dataclass(frozen=True)
class SavedBaseline:
    """The float baseline's evaluation outputs, recorded once (`baseline/outputs.npz`)."""

    path: Path

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SavedBaseline:
        return cls(Path(data["path"]))


def _baseline(
    loaded: LoadedModel, float_onnx: Path, specs: Sequence[TensorSpec]
) -> tuple[Runner, str]:
    if loaded.module is not None:
        from nnship.backends.torch_runner import TorchRunner

        return TorchRunner(loaded.module, specs), "torch/fp32"
    from nnship.backends.onnxruntime import OnnxRuntimeRunner

    return OnnxRuntimeRunner(float_onnx), "onnx/fp32"


def run_validation(
    ctx: StageContext,
    loaded: LoadedModel,
    export: ExportStageResult,
    evaluation: DataSource,
    artifacts: list[CompiledArtifact],
    compress_info: dict[str, Any] | None = None,
) -> Report:
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
        by_label: dict[str, Artifact] = {}
        cold: dict[str, tuple[float, MemoryStats]] = {}
        annotations: dict[str, RowAnnotation] = {}
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
            runner, ms, memory = timed_load(partial(open_artifact, artifact, config=config))
            stack.callback(runner.close)
            candidates[artifact.label] = runner
            by_label[artifact.label] = artifact
            cold[artifact.label] = (ms, memory)
            annotation = row_annotation(compiled.source)
            if annotation is not None:
                annotations[artifact.label] = annotation
        report = validate(
            baseline,
            candidates,
            evaluation,
            config=ctx.recipe.validation,
            artifacts=by_label,
            baseline_label=base_label,
            model_source=ctx.recipe.model.source,
            model_fingerprint=loaded.fingerprint,
            cold_start=cold,
            annotations=annotations,
            notes=ctx.notes,
            extra={"build": _build_extra(ctx, export, compress_info)},
            metric_base_dir=ctx.recipe.base_dir,
        )
    ctx.mark("validate", "ran")
    return report


def _cached_baseline(
    ctx: StageContext, loaded: LoadedModel, baseline: Runner, label: str, evaluation: DataSource
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
        "model": loaded.fingerprint,
        "runner": label,
        "data": data.fingerprint(),
        "batch_size": cfg.batch_size,
    }
    stamp, found = ctx.stamp(stage_dir, "baseline", inputs, SavedBaseline.from_dict)
    if found is not None:
        ctx.mark("baseline", "reused")
        return SavedOutputsRunner(found.path)
    recorder = OutputRecorder(label, baseline, data_fingerprint=data.fingerprint())
    for item in data.iter_batches(cfg.batch_size):
        recorder.add(item.inputs, baseline.run(item.inputs), item.labels)
    recorder.save(path)
    stamp.record([path, manifest_path(path)], SavedBaseline(path))
    ctx.mark("baseline", "ran")
    return SavedOutputsRunner(path)


def row_annotation(source: QuantizedModel) -> RowAnnotation | None:
    """What the build adds to an artifact's row: the quantizer's result (`extra["quantize"]`)
    and its decisions as notes; None for an artifact compiled from the float ONNX."""
    from nnship.validate.validate import RowAnnotation

    extra = _quantize_extra(source)
    if extra is None:
        return None
    return RowAnnotation(notes=tuple(_quantize_notes(source)), extra={"quantize": extra})


def _build_extra(
    ctx: StageContext, export: ExportStageResult, compress_info: dict[str, Any] | None
) -> dict[str, Any]:
    """The report's `extra["build"]`: the resolved recipe, stage states so far, the export
    check and the compression summary."""
    return {
        "name": ctx.recipe.name,
        "recipe": ctx.recipe.to_dict(),
        "recipe_path": str(ctx.recipe.path) if ctx.recipe.path else None,
        "stages": dict(ctx.stages),
        "export": export.summary.to_dict() if export.summary else None,
        "compress": compress_info,
    }


def _quantize_extra(source: QuantizedModel) -> dict[str, Any] | None:
    """The row's `extra["quantize"]`: the quantizer's result, or for NNCF INT8 the mode;
    None for a float ONNX."""
    if source.result is not None:
        return source.result.to_dict()
    return {"int8_mode": "nncf"} if source.nncf else None


def _quantize_notes(source: QuantizedModel) -> list[str]:
    """What the row's notes say of the quantizer's decisions: float nodes and why (the first
    `MAX_FLOAT_NODE_NOTES`), fallback reverts, opset and subnormal rewrites, NNCF."""
    notes: list[str] = []
    result = source.result
    if result is not None:
        nodes = result.float_nodes
        for node in nodes[:MAX_FLOAT_NODE_NOTES]:
            notes.append(f"kept in float: {node.name} ({node.op_type}): {node.reason}")
        if len(nodes) > MAX_FLOAT_NODE_NOTES:
            notes.append(f"... and {len(nodes) - MAX_FLOAT_NODE_NOTES} more float nodes")
        for name in result.reverted_names():
            notes.append(f"reverted to float by the accuracy fallback: {name}")
        for step in ("opset_conversion", "subnormals"):
            summary = result.detail_summary(step)
            if summary and summary != NO_SUBNORMALS:
                notes.append(f"quantize: {summary}")
    if source.nncf:
        notes.append("INT8 made by NNCF from the float model (OpenVINO int8_mode nncf)")
    return notes


def save_report(ctx: StageContext, report: Report) -> Path:
    """Write `report/report.json` (and the Markdown beside it); returns the JSON's path."""
    from nnship.validate.render.markdown import save_with_markdown

    path = ctx.out / "report" / "report.json"
    save_with_markdown(report, path)
    ctx.mark("report", "written")
    return path
