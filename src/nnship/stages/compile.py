"""The compile stage of `nnship build`: every (backend, precision) ONNX to a backend artifact.

Contract: requires the quantize stage's `QuantizedModel` per (backend, precision); returns one
`CompiledArtifact` per pair, in the same order, each written under
`backends/<backend>/<precision>/`. Cached on the ONNX's hash, the precision, the backend's
options, the calibration data (OpenVINO NNCF INT8 only), the quantizer's exclusions and the tool
versions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nnship.core import Artifact, DataSource
from nnship.core.fileio import sha256_file
from nnship.stages.context import StageContext
from nnship.stages.quantize import QuantizedModel
from nnship.stages.versions import dump, tool_versions


@dataclass(frozen=True)
class CompiledArtifact:
    artifact: Artifact
    quantize_info: dict[str, Any] = field(default_factory=dict)
    """The quantizer's result for the ONNX it was compiled from ({} for fp32)."""


def run_compile(
    ctx: StageContext,
    models: dict[tuple[str, str], QuantizedModel],
    calib: DataSource | None,
) -> list[CompiledArtifact]:
    out: list[CompiledArtifact] = []
    exclude = getattr(ctx.recipe.quantize, "exclude", None)
    for (backend_name, precision), model in models.items():
        nncf = model.info.get("int8_mode") == "nncf"
        stage_dir = ctx.out / "backends" / backend_name / precision
        inputs = {
            "onnx": sha256_file(model.path),
            "precision": precision,
            "options": dump(ctx.recipe.backends.options_for(backend_name)) or {},
            "calib": ctx.data_key(calib) if nncf else None,
            "exclude": dump(exclude),
            "versions": tool_versions(),
        }
        stamp, found = ctx.stamp(stage_dir, "compile", inputs)
        label = f"compile {backend_name}/{precision}"
        if found is not None:
            artifact = Artifact.from_dict(found)
            ctx.mark(label, "reused")
        else:
            from nnship.backends.compile import compile_model

            use_exclude = exclude is not None and nncf
            artifact = compile_model(
                model.path,
                stage_dir,
                backend=backend_name,
                precision=precision,
                config=ctx.recipe.backends,
                calib_data=calib if nncf else None,
                exclude_names=list(exclude.names) if use_exclude else [],
                exclude_op_types=list(exclude.op_types) if use_exclude else [],
                exclude_patterns=list(exclude.regex) if use_exclude else [],
            )
            stamp.record([stage_dir], artifact.to_dict())
            ctx.mark(label, "ran")
        out.append(CompiledArtifact(artifact, model.info))
    return out
