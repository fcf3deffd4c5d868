"""The compression stage of `nnship build`: `[prune]` and/or `[distill]` before export.

Contract: requires a `LoadedModel` holding a torch module (an ONNX source is a recipe error)
and, for Taylor importance, BatchNorm recalibration or distillation, the training data;
returns `CompressStageResult`: the `LoadedModel` of the last `.pt2` written and the JSON-able
summary of every step. Skipped (the loaded model is returned) without `[prune]`/`[distill]`.

The work is `nnship.compress.compress` (the same schedule `nnship prune` runs: `[prune] steps`
steps of prune -> distill). Each phase is a stage of its own: "prune" and "distill" for a
one-step schedule, "prune 2/3", "distill 2/3" ... for more, each cached under the hash of its
settings and of the phase before it, and each writing its model as a `.pt2` in `compress/`
(with a dynamic batch axis); the export stage exports the last one, so a reused stage needs no
pickles and no recomputation. The data for data-driven importance (Taylor), recalibration and
distillation is `[data.train]`, else the calibration data.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnship.core import DataSource
from nnship.core.errors import RecipeError
from nnship.stages.context import StageContext

if TYPE_CHECKING:
    from torch import nn

    from nnship.compress import CompressResult, Phase
    from nnship.stages.cache import StageStamp

log = logging.getLogger("nnship.pipeline")


PLANNER_VERSION = 2
"""Bumped when the same `[prune]` settings prune other channels (2: Torch-Pruning's own planner,
compress/planning.py), so cached prunings of an older planner are not reused."""


@dataclass(frozen=True)
class CompressStageResult:
    model: Any
    """The `LoadedModel` export starts from (the compressed `.pt2`, or the loaded model)."""
    info: dict[str, Any] | None = field(default=None)
    """{"prune": ..., "distill": ...} summaries (pruning measured against the source model,
    the last distillation), with "steps": [{"step", "prune", "distill"}, ...] for a schedule
    of several steps; None when the stage was skipped."""


def _json(summary: dict[str, Any]) -> dict[str, Any]:
    """`summary` as it reads back from the stage cache (tuples as lists, anything else that
    is not JSON as its string)."""
    return json.loads(json.dumps(summary, default=str))


class _CachedPhases:
    """The build's stage cache as the schedule's `PhaseStore`: one entry and one `.pt2` in
    `compress/` per phase. A phase's key holds its settings and the key of the phase before
    it (the first: the source model's fingerprint and the seed), so identical steps are
    shared between builds and trials; a one-step schedule keeps the keys it always had."""

    def __init__(self, ctx: StageContext, loaded: Any, train: DataSource | None) -> None:
        self.ctx = ctx
        self.example = loaded.example_inputs
        self.train = train
        self.stage_dir = ctx.out / "compress"
        self.previous: dict[str, Any] = {"model": loaded.fingerprint, "seed": ctx.recipe.seed}
        self.stamps: dict[str, StageStamp] = {}
        self.loaded: dict[str, Any] = {}
        self.last: Phase | None = None
        """The phase loaded or kept last: `compress()` ends with the schedule's last one."""

    def path(self, phase: Phase) -> Path:
        stem = "model.pruned" if phase.kind == "prune" else "model.distilled"
        step = "" if phase.steps == 1 else f".{phase.step}"
        return self.stage_dir / f"{stem}{step}.pt2"

    def _inputs(self, phase: Phase) -> dict[str, Any]:
        config = phase.config.model_dump(mode="json")
        if phase.kind == "prune":
            key = {**self.previous, "prune": config}
            key["planner"] = PLANNER_VERSION  # older planners' entries are stale
            if config["importance"] == "taylor" or config["recalibrate_bn"]:
                key["data"] = self.ctx.data_key(self.train)  # Taylor scores, recalibration
            return key
        key = {
            **self.previous,
            "distill": config,
            "data": self.ctx.data_key(self.train),
            "seed": self.ctx.recipe.seed,
        }
        if phase.keep_zeros:
            key["keep_zeros"] = True
        return key

    def lookup(self, phase: Phase) -> dict[str, Any] | None:
        stamp, found = self.ctx.stamp(self.stage_dir, phase.name, self._inputs(phase))
        self.stamps[phase.name] = stamp
        self.previous = {"pruned" if phase.kind == "prune" else "distilled": stamp.key}
        return found

    def load(self, phase: Phase) -> nn.Module:
        from nnship.sources.models import load_model

        self.loaded[phase.name] = load_model(self.path(phase))
        self.last = phase
        self.ctx.mark(phase.name, "reused")
        return self.loaded[phase.name].module

    def keep(self, phase: Phase, module: nn.Module, summary: dict[str, Any]) -> None:
        from nnship.sources.pt2 import save_pt2

        path = save_pt2(module, self.example, self.path(phase))
        self.stamps[phase.name].record([path], _json(summary))
        self.last = phase
        self.ctx.mark(phase.name, "ran")

    def final_model(self) -> Any:
        """The `LoadedModel` of the last phase's `.pt2`."""
        from nnship.sources.models import load_model

        assert self.last is not None, "compress() ran no phase"
        return self.loaded.get(self.last.name) or load_model(self.path(self.last))


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
    if recipe.distill is not None and train is None:
        raise RecipeError(
            f"{ctx.name}: [distill] needs training data: add [data.train] (or [data.calibration])"
        )
    from nnship.compress import compress

    store = _CachedPhases(ctx, loaded, train)
    result = compress(
        loaded.module,
        loaded.example_inputs,
        recipe.prune,
        recipe.distill,
        data=train,
        on_epoch=ctx.on_distill_epoch,
        store=store,
    )
    info = _info(result)
    _note(ctx, result, info)
    return CompressStageResult(store.final_model(), info)


def _info(result: CompressResult) -> dict[str, Any]:
    """The report's summary of the schedule (see `CompressStageResult.info`)."""
    info: dict[str, Any] = {}
    pruned = result.pruned()
    if pruned is not None:
        info["prune"] = _json(pruned.to_dict())
    if result.distill_steps:
        info["distill"] = _json(result.distill_steps[-1].to_dict())
    if result.steps > 1:
        info["steps"] = [
            {
                "step": k + 1,
                "prune": _json(result.prune_steps[k].to_dict()) if result.prune_steps else None,
                "distill": (
                    _json(result.distill_steps[k].to_dict()) if result.distill_steps else None
                ),
            }
            for k in range(result.steps)
        ]
    return info


def _note(ctx: StageContext, result: CompressResult, info: dict[str, Any]) -> None:
    """The report's notes: the pruning as a whole, then the distillation of a one-step
    schedule, or what each step of a longer one did."""
    if "prune" in info:
        _note_prune(ctx, info["prune"], result.steps)
    if result.steps == 1:
        if "distill" in info:
            _note_distill(ctx, info["distill"])
        return
    source_params = result.prune_steps[0].params_before
    for k in range(result.steps):
        prune = result.prune_steps[k]
        text = f"step {k + 1}/{result.steps}: pruned to {prune.params_after / source_params:.0%}"
        text += " of the source model's parameters"
        if k < len(result.distill_steps):
            text += ", then " + _distilled(info["steps"][k]["distill"])
        ctx.note(text)


def _note_prune(ctx: StageContext, found: dict[str, Any], steps: int = 1) -> None:
    """A report note: how much of the source model the pruned one keeps (every artifact row
    is the pruned model, the baseline the source)."""
    params, flops = found.get("param_ratio"), found.get("flops_ratio")
    if params is None or flops is None:
        return
    ratio = (found.get("config") or {}).get("ratio")
    how = f"ratio {ratio}" if ratio is not None else "pruned"
    if steps > 1:
        how += f" in {steps} steps"
    ctx.note(
        f"pruned ({how}): the artifacts keep {params:.0%} of the source model's parameters and "
        f"{flops:.0%} of its multiply-adds; the baseline is the unpruned model"
    )


def _distilled(found: dict[str, Any]) -> str:
    """How a distillation summary reads in a note: distilled (N epochs) from the source
    model, with the top-1 agreement before and after when it was measured."""
    before, after = found.get("agreement_before"), found.get("agreement_after")
    epochs = found.get("epochs")
    text = f"distilled{f' ({epochs} epochs)' if epochs else ''} from the source model"
    if before is None or after is None:
        return text
    return (
        f"{text}: top-1 agreement with it on the held-out training split {before:.1%} "
        f"before, {after:.1%} after"
    )


def _note_distill(ctx: StageContext, found: dict[str, Any]) -> None:
    """A report note: what distillation recovered, on its held-out split."""
    if found.get("agreement_before") is None or found.get("agreement_after") is None:
        return
    ctx.note(_distilled(found))
