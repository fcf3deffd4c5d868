"""The export stage of `nnship build`: the (compressed) PyTorch model to `export/model.fp32.onnx`.

Contract: requires a `LoadedModel` (a torch module with input specs, or an ONNX file, which is
passed through unchanged); returns `ExportStageResult` (the float ONNX, its input specs as the
ONNX declares them, and the exporter's `ExportSummary`). Cached on the model's content
fingerprint, the input specs, `[export]`, the seed and the tool versions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnship.core import TensorSpec
from nnship.core.errors import RecipeError
from nnship.stages.context import StageContext
from nnship.stages.versions import dump, tool_versions

if TYPE_CHECKING:
    from nnship.sources.models import LoadedModel


@dataclass(frozen=True)
class ExportSummary:
    """What the exporter says of the ONNX it wrote (the report's `extra.build.export`)."""

    opset: int | None
    exporter: str | None
    """The exporter really used ("dynamo", "torchscript")."""
    max_abs_error: float | None
    """Largest |torch - ONNX Runtime| over all outputs and verification samples."""
    output_names: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "opset": self.opset,
            "exporter": self.exporter,
            "max_abs_error": self.max_abs_error,
            "output_names": list(self.output_names),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExportSummary:
        return cls(
            opset=data["opset"],
            exporter=data["exporter"],
            max_abs_error=data["max_abs_error"],
            output_names=tuple(data["output_names"]),
        )


@dataclass(frozen=True)
class ExportStageResult:
    """The float ONNX the later stages start from, its inputs, and the exporter's summary."""

    onnx_path: Path
    input_specs: tuple[TensorSpec, ...]
    """The inputs as the ONNX declares them (symbolic dimensions kept)."""
    summary: ExportSummary | None = None
    """None when the source was an ONNX file (nothing was exported)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "onnx_path": str(self.onnx_path),
            "input_specs": [s.to_dict() for s in self.input_specs],
            "summary": self.summary.to_dict() if self.summary else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExportStageResult:
        summary = data["summary"]
        return cls(
            onnx_path=Path(data["onnx_path"]),
            input_specs=tuple(TensorSpec.from_dict(s) for s in data["input_specs"]),
            summary=ExportSummary.from_dict(summary) if summary is not None else None,
        )


def run_export(ctx: StageContext, model: LoadedModel) -> ExportStageResult:
    from nnship.onnx.graph import load_onnx, onnx_input_specs

    if model.module is None and model.onnx_path is not None:
        ctx.mark("export", "skipped (ONNX source)")
        path = Path(model.onnx_path)
        specs = onnx_input_specs(load_onnx(path, load_weights=False))
        return ExportStageResult(path, tuple(specs))
    from nnship.exporter import export_onnx

    recipe = ctx.recipe
    export_dir = ctx.out / "export"
    out_path = export_dir / "model.fp32.onnx"
    declared = model.input_specs or recipe.model.input_specs()
    if not declared:
        raise RecipeError(
            f"{ctx.name}: [model] inputs: needed to export '{recipe.model.source}', "
            'e.g. inputs = ["x:1x3x224x224"]'
        )
    inputs = {
        "model": model.fingerprint,
        "inputs": [s.to_dict() for s in declared],
        "export": dump(recipe.export),
        "seed": recipe.seed,
        "versions": tool_versions(),
    }
    stamp, found = ctx.stamp(export_dir, "export", inputs, ExportStageResult.from_dict)
    if found is not None:
        ctx.mark("export", "reused")
        return found
    exported = export_onnx(model, out_path, input_specs=declared, options=recipe.export)
    summary = ExportSummary(
        opset=exported.opset,
        exporter=exported.exporter,
        max_abs_error=exported.max_abs_error,
        output_names=tuple(exported.output_names),
    )
    specs = onnx_input_specs(load_onnx(out_path, load_weights=False))
    result = ExportStageResult(out_path, tuple(specs), summary)
    stamp.record(_written(out_path), result)
    ctx.mark("export", "ran")
    return result


def _written(onnx_path: Path) -> list[Path]:
    """The ONNX file and its external-data files, if the exporter wrote any."""
    return [onnx_path, *sorted(onnx_path.parent.glob(f"{onnx_path.stem}*.data"))]
