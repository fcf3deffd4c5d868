"""The export stage of `nnship build`: the (compressed) PyTorch model to `export/model.fp32.onnx`.

Contract: requires a `LoadedModel` (a torch module with input specs, or an ONNX file, which is
passed through unchanged); returns `ExportStageResult` (the float ONNX, its input specs as the
ONNX declares them, and the exporter's summary). Cached on the model's content fingerprint,
the input specs, `[export]`, the seed and the tool versions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnship.core import TensorSpec
from nnship.core.errors import RecipeError
from nnship.stages.context import StageContext
from nnship.stages.versions import dump, tool_versions


@dataclass(frozen=True)
class ExportStageResult:
    onnx_path: Path
    input_specs: list[TensorSpec]
    info: dict[str, Any] | None = field(default=None)
    """opset, exporter, max_abs_error, output_names (None when the source was ONNX)."""


def run_export(ctx: StageContext, model: Any) -> ExportStageResult:
    from nnship.onnx.graph import load_onnx, onnx_input_specs

    if model.module is None and model.onnx_path is not None:
        ctx.mark("export", "skipped (ONNX source)")
        path = Path(model.onnx_path)
        return ExportStageResult(path, onnx_input_specs(load_onnx(path, load_weights=False)))
    from nnship.exporter import export_onnx

    recipe = ctx.recipe
    export_dir = ctx.out / "export"
    out_path = export_dir / "model.fp32.onnx"
    specs = model.input_specs or recipe.model.input_specs()
    if not specs:
        raise RecipeError(
            f"{ctx.name}: [model] inputs: needed to export '{recipe.model.source}', "
            'e.g. inputs = ["x:1x3x224x224"]'
        )
    inputs = {
        "model": model.fingerprint,
        "inputs": [s.to_dict() for s in specs],
        "export": dump(recipe.export),
        "seed": recipe.seed,
        "versions": tool_versions(),
    }
    stamp, found = ctx.stamp(export_dir, "export", inputs)
    if found is not None:
        ctx.mark("export", "reused")
    else:
        result = export_onnx(model, out_path, input_specs=specs, options=recipe.export)
        found = {
            "opset": getattr(result, "opset", None),
            "exporter": getattr(result, "exporter", None),
            "max_abs_error": getattr(result, "max_abs_error", None),
            "output_names": list(getattr(result, "output_names", []) or []),
        }
        stamp.record(_written(out_path), found)
        ctx.mark("export", "ran")
    specs = onnx_input_specs(load_onnx(out_path, load_weights=False))
    return ExportStageResult(out_path, specs, found)


def _written(onnx_path: Path) -> list[Path]:
    """The ONNX file and its external-data files, if the exporter wrote any."""
    return [onnx_path, *sorted(onnx_path.parent.glob(f"{onnx_path.stem}*.data"))]
