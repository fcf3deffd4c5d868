"""The compile stage of `nnship build`: every (backend, precision) ONNX to a backend artifact.

Contract: requires the quantize stage's `QuantizedModel` per (backend, precision); returns one
`CompiledArtifact` per pair, in the same order, each written under
`backends/<backend>/<precision>/` (stored as its `Artifact`). Cached on the ONNX's hash, the
precision, the backend's options, the calibration data (OpenVINO NNCF INT8 only), the
quantizer's exclusions and the tool versions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nnship.core import Artifact, DataSource
from nnship.core.fileio import sha256_file
from nnship.stages.context import StageContext
from nnship.stages.quantize import QuantizedModel
from nnship.stages.versions import dump, tool_versions


@dataclass(frozen=True)
class CompiledArtifact:
    """A backend artifact and the ONNX it was compiled from (with the quantizer's decisions)."""

    artifact: Artifact
    source: QuantizedModel

    def to_dict(self) -> dict[str, Any]:
        return {"artifact": self.artifact.to_dict(), "source": self.source.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CompiledArtifact:
        return cls(Artifact.from_dict(data["artifact"]), QuantizedModel.from_dict(data["source"]))


def run_compile(
    ctx: StageContext,
    models: dict[tuple[str, str], QuantizedModel],
    calib: DataSource | None,
) -> list[CompiledArtifact]:
    out: list[CompiledArtifact] = []
    exclude = ctx.recipe.quantize.exclude if ctx.recipe.quantize is not None else None
    for (backend_name, precision), model in models.items():
        stage_dir = ctx.out / "backends" / backend_name / precision
        inputs = {
            "onnx": sha256_file(model.path),
            "precision": precision,
            "options": dump(ctx.recipe.backends.options_for(backend_name)) or {},
            "calib": ctx.data_key(calib) if model.nncf else None,
            "exclude": dump(exclude),
            "versions": tool_versions(),
        }
        stamp, found = ctx.stamp(stage_dir, "compile", inputs, Artifact.from_dict)
        label = f"compile {backend_name}/{precision}"
        if found is not None:
            artifact = found
            ctx.mark(label, "reused")
        else:
            from nnship.backends.compile import compile_model

            keep = exclude if model.nncf else None  # NNCF leaves these in float itself
            artifact = compile_model(
                model.path,
                stage_dir,
                backend=backend_name,
                precision=precision,
                config=ctx.recipe.backends,
                calib_data=calib if model.nncf else None,
                exclude_names=list(keep.names) if keep is not None else [],
                exclude_op_types=list(keep.op_types) if keep is not None else [],
                exclude_patterns=list(keep.regex) if keep is not None else [],
            )
            stamp.record([stage_dir], artifact)
            ctx.mark(label, "ran")
        out.append(CompiledArtifact(artifact, model))
    return out
