"""The first stage of `nnship build`: load the model and open the data the recipe names.

Contract: requires a validated recipe; returns the `LoadedModel` (float module or ONNX file,
with a content fingerprint) and the (calibration, evaluation, train) data sources, each
checked against the model's declared inputs with a free batch axis. Writes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nnship.core import DataSource, TensorSpec, example_batch
from nnship.stages.context import StageContext

if TYPE_CHECKING:
    from nnship.sources.models import LoadedModel

log = logging.getLogger("nnship.pipeline")

SYNTHETIC_SAMPLES = 64
"""Evaluation samples generated from the input specs when a recipe names no data."""


@dataclass(frozen=True)
class BuildData:
    """The data splits of a build; evaluation falls back to calibration, train to calibration."""

    calibration: DataSource | None
    evaluation: DataSource | None
    train: DataSource | None


def dynamic_batch(specs: list[TensorSpec]) -> list[TensorSpec]:
    """Specs with axis 0 symbolic, for checking data batches of any size."""
    return [TensorSpec(s.name, ("batch", *s.shape[1:]) if s.shape else (), s.dtype) for s in specs]


def load_source_model(ctx: StageContext) -> LoadedModel:
    """The recipe's `[model]` as a `nnship.sources.models.LoadedModel`."""
    from nnship.sources.models import load_model

    cfg = ctx.recipe.model
    loaded = load_model(
        cfg.source,
        inputs=cfg.input_specs(),
        factory_kwargs=cfg.factory_kwargs or None,
        weights=cfg.weights,
        trust_pickle=cfg.trust_pickle,
        base_dir=ctx.recipe.base_dir,
    )
    ctx.mark("model", "loaded")
    return loaded


def open_data(ctx: StageContext, specs: list[TensorSpec]) -> BuildData:
    """(calibration, evaluation, train) data; evaluation falls back to calibration (with a
    warning and a note), train to calibration. Checked against `specs` (batch axis free)."""
    cfg = ctx.recipe.data
    if not any((cfg.calibration, cfg.evaluation, cfg.train)):
        return BuildData(None, None, None)
    from nnship.sources.data import open_data_config

    base = ctx.recipe.base_dir
    check = specs or None

    def open_split(split: str) -> DataSource | None:
        data_cfg = getattr(cfg, split)
        return open_data_config(data_cfg, check, base) if data_cfg is not None else None

    calib = open_split("calibration")
    evaluation = open_split("evaluation")
    train = open_split("train") or calib
    if evaluation is None and calib is not None:
        log.warning("no [data.evaluation]: validating on the calibration data")
        ctx.note("Evaluated on the calibration data (no [data.evaluation] given).")
        evaluation = calib
    return BuildData(calib, evaluation, train)


def synthetic_data(ctx: StageContext, specs: Sequence[TensorSpec]) -> DataSource:
    """Deterministic random inputs when a recipe names no data (drift only, no accuracy)."""
    from nnship.sources.arrays import ArrayData

    log.warning(
        "no [data] in the recipe: validating on %d synthetic samples (drift only)",
        SYNTHETIC_SAMPLES,
    )
    ctx.note(
        f"No data given: evaluated on {SYNTHETIC_SAMPLES} synthetic samples "
        "(numeric drift only, no accuracy)."
    )
    return ArrayData(
        example_batch(specs, batch=SYNTHETIC_SAMPLES, seed=ctx.recipe.seed), name="synthetic"
    )
