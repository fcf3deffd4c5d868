"""A task metric from outside a recipe (`nnship validate --metric`, `api.validate(metric=...)`):
read from a TOML file, or given as a table, and merged with task gates into a `ValidateConfig`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from nnship.core import toml
from nnship.metrics.task.base import MetricError
from nnship.validate.config import ValidateConfig
from nnship.validate.report import summarize_errors


def read_metric_file(path: Path | str) -> dict[str, Any]:
    """The task metric table of a TOML file: a recipe's `[validate.metric]`, a `[metric]`
    table, or the table's keys (`kind = ...`) at the top level. `MetricError` names the file."""
    path = Path(path)
    try:
        raw = toml.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise MetricError(f"Task metric file '{path}' does not exist") from exc
    except (OSError, UnicodeDecodeError, toml.TOMLDecodeError) as exc:
        raise MetricError(f"Task metric file '{path}' is not valid TOML: {exc}") from exc
    validate_section = raw.get("validate")
    if "kind" in raw:
        return raw
    if isinstance(validate_section, dict) and isinstance(validate_section.get("metric"), dict):
        return validate_section["metric"]
    if isinstance(raw.get("metric"), dict):
        return raw["metric"]
    raise MetricError(
        f"Task metric file '{path}' holds no task metric: give a [validate.metric] or [metric] "
        'table, or its keys at the top level (kind = "detection", ...)'
    )


def with_task_metric(
    config: ValidateConfig,
    metric: BaseModel | Mapping[str, Any] | None = None,
    task_gates: Mapping[str, str] | None = None,
) -> ValidateConfig:
    """`config` with `metric` (a family's config or its table) replacing its task metric and
    `task_gates` ({name: ">= x"}) added to its task gates; validated again, so a bad key, a
    bound or a gate the family does not compute is a `MetricError` naming it."""
    if metric is None and not task_gates:
        return config
    data = config.model_dump(mode="json")
    if metric is not None:
        data["metric"] = (
            metric.model_dump(mode="json") if isinstance(metric, BaseModel) else dict(metric)
        )
    data["gates"]["task"] = {**data["gates"].get("task", {}), **dict(task_gates or {})}
    try:
        return ValidateConfig.model_validate(data)
    except ValidationError as exc:
        why = summarize_errors(exc).replace("field '(top level)': ", "")
        raise MetricError(
            f"Bad task metric or task gate: {why.replace('Value error, ', '')}"
        ) from exc
