"""The compression stages of `nnship build`: prune, then distill, before export.

Contract: requires a `LoadedModel` holding a torch module (an ONNX source is a recipe error)
and, for Taylor importance, BatchNorm recalibration or distillation, the training data;
returns `CompressStageResult`: the `LoadedModel` of the last `.pt2` written and the JSON-able
summaries of each step. Skipped (the loaded model is returned) without `[prune]`/`[distill]`.

Each writes its model as a `.pt2` in `compress/` (with a dynamic batch axis) and the export
stage exports that file, so a reused stage needs no pickles and no recomputation. The data for
data-driven importance (Taylor) and for distillation is `[data.train]`, else the calibration data.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Any

from nnship.core import DataSource
from nnship.core.errors import RecipeError
from nnship.stages.context import StageContext

log = logging.getLogger("nnship.pipeline")


@dataclass(frozen=True)
class CompressStageResult:
    model: Any
    """The `LoadedModel` export starts from (the compressed `.pt2`, or the loaded model)."""
    info: dict[str, Any] | None = field(default=None)
    """{"prune": ..., "distill": ...} summaries; None when the stage was skipped."""


def _result_module(result: Any, *names: str) -> Any:
    for name in names:
        module = getattr(result, name, None)
        if module is not None:
            return module
    raise AssertionError(f"{type(result).__name__} holds none of {names}")  # contract broken


def _info(result: Any) -> dict[str, Any]:
    """The JSON-able summary of a prune/distill result (its scalar fields, or `to_dict()`)."""
    import dataclasses
    import json

    if hasattr(result, "to_dict"):
        return json.loads(json.dumps(result.to_dict(), default=str))
    out: dict[str, Any] = {}
    if dataclasses.is_dataclass(result):
        for f in dataclasses.fields(result):
            value = getattr(result, f.name)
            if isinstance(value, int | float | str | bool) or value is None:
                out[f.name] = value
    return out


def run_compress(ctx: StageContext, loaded: Any, train: DataSource | None) -> CompressStageResult:
    """Prune and/or distill `loaded.module` as the recipe says."""
    recipe = ctx.recipe
    if recipe.prune is None and recipe.distill is None:
        ctx.mark("compress", "skipped")
        return CompressStageResult(loaded)
    if loaded.module is None:
        section = "[prune]" if recipe.prune is not None else "[distill]"
        raise RecipeError(
            f"{ctx.name}: {section} needs a PyTorch model, but [model] source "
            f"'{recipe.model.source}' is an ONNX file"
        )
    from nnship.sources.models import load_model
    from nnship.sources.pt2 import save_pt2

    stage_dir = ctx.out / "compress"
    example = loaded.example_inputs
    key: dict[str, Any] = {"model": loaded.fingerprint, "seed": recipe.seed}
    info: dict[str, Any] = {}
    current = loaded
    student = None  # the pruned module when pruning ran in this process (trainable as is)
    if recipe.prune is not None:
        from nnship.compress import prune

        key = {**key, "prune": recipe.prune.model_dump(mode="json")}
        if recipe.prune.importance == "taylor" or recipe.prune.recalibrate_bn:
            key["data"] = ctx.data_key(train)  # Taylor scores, BatchNorm recalibration
        path = stage_dir / "model.pruned.pt2"
        stamp, found = ctx.stamp(stage_dir, "prune", key)
        if found is None:
            module = copy.deepcopy(loaded.module)
            result = prune(module, example, recipe.prune, data=train)
            student = _result_module(result, "module", "model")
            save_pt2(student, example, path)
            found = _info(result)
            stamp.record([path], found)
            ctx.mark("prune", "ran")
        else:
            ctx.mark("prune", "reused")
        info["prune"] = found
        _note_prune(ctx, found)
        key = {"pruned": stamp.key}
        current = load_model(path)
    if recipe.distill is not None:
        from nnship.compress import distill

        if train is None:
            raise RecipeError(
                f"{ctx.name}: [distill] needs training data: add [data.train] "
                "(or [data.calibration])"
            )
        key = {
            **key,
            "distill": recipe.distill.model_dump(mode="json"),
            "data": ctx.data_key(train),
            "seed": recipe.seed,
        }
        path = stage_dir / "model.distilled.pt2"
        stamp, found = ctx.stamp(stage_dir, "distill", key)
        if found is None:
            if student is None:
                student = current.module
            result = distill(
                loaded.module, student, train, recipe.distill, on_epoch=ctx.on_distill_epoch
            )
            save_pt2(_result_module(result, "student", "module", "model"), example, path)
            found = _info(result)
            stamp.record([path], found)
            ctx.mark("distill", "ran")
        else:
            ctx.mark("distill", "reused")
        info["distill"] = found
        _note_distill(ctx, found)
        current = load_model(path)
    return CompressStageResult(current, info)


def _note_prune(ctx: StageContext, found: dict[str, Any]) -> None:
    """A report note: how much of the source model the pruned one keeps (every artifact row
    is the pruned model, the baseline the source)."""
    params, flops = found.get("param_ratio"), found.get("flops_ratio")
    if params is None or flops is None:
        return
    ratio = (found.get("config") or {}).get("ratio")
    how = f"ratio {ratio}" if ratio is not None else "pruned"
    ctx.note(
        f"pruned ({how}): the artifacts keep {params:.0%} of the source model's parameters and "
        f"{flops:.0%} of its multiply-adds; the baseline is the unpruned model"
    )


def _note_distill(ctx: StageContext, found: dict[str, Any]) -> None:
    """A report note: what distillation recovered, on its held-out split."""
    before, after = found.get("agreement_before"), found.get("agreement_after")
    if before is None or after is None:
        return
    epochs = found.get("epochs")
    ran = f" ({epochs} epochs)" if epochs else ""
    ctx.note(
        f"distilled{ran} from the source model: top-1 agreement with it on the held-out "
        f"training split {before:.1%} before, {after:.1%} after"
    )
