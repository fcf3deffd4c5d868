"""The compression stages of `nnship build`: prune, then distill, before export.

Each writes its model as a `.pt2` in `compress/` (with a dynamic batch axis) and the export
stage exports that file, so a reused stage needs no pickles and no recomputation. The data for
data-driven importance (Taylor) and for distillation is `[data.train]`, else the calibration data.
"""

from __future__ import annotations

import copy
import logging
from typing import TYPE_CHECKING, Any

from nnship.core import DataSource
from nnship.errors import RecipeError

if TYPE_CHECKING:
    from nnship.build.pipeline import Pipeline

log = logging.getLogger("nnship.build")


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


def run_compress(pipeline: Pipeline, loaded: Any, train: DataSource | None) -> Any:
    """Prune and/or distill `loaded.module`; returns the `LoadedModel` of the last `.pt2`."""
    from nnship.sources.models import load_model
    from nnship.sources.pt2 import save_pt2

    recipe = pipeline.recipe
    stage_dir = pipeline.out / "compress"
    example = loaded.example_inputs
    key: dict[str, Any] = {"model": loaded.fingerprint, "seed": recipe.seed}
    info: dict[str, Any] = {}
    current = loaded
    student = None  # the pruned module when pruning ran in this process (trainable as is)
    if recipe.prune is not None:
        from nnship.compress import prune

        key = {**key, "prune": recipe.prune.model_dump(mode="json")}
        if recipe.prune.importance == "taylor" or recipe.prune.recalibrate_bn:
            key["data"] = pipeline.data_key(train)  # Taylor scores, BatchNorm recalibration
        path = stage_dir / "model.pruned.pt2"
        stamp, found = pipeline._stamp(stage_dir, "prune", key)
        if found is None:
            module = copy.deepcopy(loaded.module)
            result = prune(module, example, recipe.prune, data=train)
            student = _result_module(result, "module", "model")
            save_pt2(student, example, path)
            found = _info(result)
            stamp.record([path], found)
            pipeline._mark("prune", "ran")
        else:
            pipeline._mark("prune", "reused")
        info["prune"] = found
        key = {"pruned": stamp.key}
        current = load_model(path)
    if recipe.distill is not None:
        from nnship.compress import distill

        if train is None:
            raise RecipeError(
                f"{pipeline.name}: [distill] needs training data: add [data.train] "
                "(or [data.calibration])"
            )
        key = {
            **key,
            "distill": recipe.distill.model_dump(mode="json"),
            "data": pipeline.data_key(train),
            "seed": recipe.seed,
        }
        path = stage_dir / "model.distilled.pt2"
        stamp, found = pipeline._stamp(stage_dir, "distill", key)
        if found is None:
            if student is None:
                student = current.module
            result = distill(loaded.module, student, train, recipe.distill)
            save_pt2(_result_module(result, "student", "module", "model"), example, path)
            found = _info(result)
            stamp.record([path], found)
            pipeline._mark("distill", "ran")
        else:
            pipeline._mark("distill", "reused")
        info["distill"] = found
        current = load_model(path)
    pipeline.compress_info = info
    return current
