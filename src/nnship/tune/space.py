"""The search space of `nnship tune`: parameters, conditions, and the checks a `[tune]`
section gets before any trial (`validate_space`). The section's model itself, `TuneConfig`, is
the recipe's (`nnship.recipe.tune_section`).

Conditions: a parameter (or a whole section) is active only when its condition holds, evaluated
on the parameters sampled before it (declaration order) and, for keys not in the space, on the
recipe's own values. Grammar: `KEY OP VALUE [and KEY OP VALUE ...]`, `OP` one of
`== != < <= > >= in`, `VALUE` a TOML literal (`0`, `"mse"`, `["int8"]`). An inactive parameter
is not sampled and the recipe keeps its own value; an inactive section is removed from the
trial's recipe (so `"distill" = "prune.ratio > 0"` distills pruned models only).

Everything is checked when the recipe loads, before any trial (`validate_space`): each key
must be a recipe key that accepts the values of its range (a representative value is applied
as an override and the recipe validated), `low <= high`, `log` only for positive ranges, no
empty list. Errors are `RecipeError`s naming the key (exit 2).

This module imports neither torch nor optuna.
"""

from __future__ import annotations

import fnmatch
import json
import math
import operator
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from nnship.core import toml
from nnship.core.fileio import stable_hash
from nnship.recipe.tune_section import (
    CONSTRAINT_GATES,
    ChoiceSpec,
    TuneConfig,
)

__all__ = [
    "CONSTRAINT_GATES",
    "Condition",
    "Parameter",
    "TuneConfig",
    "TuneSpace",
    "parse_condition",
    "space_hash",
    "validate_space",
]

# ---------------------------------------------------------------------------------------------
# Conditions

_OPS = {
    "==": operator.eq,
    "!=": operator.ne,
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
    "in": lambda a, b: a in b,
}
_CLAUSE = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(==|!=|<=|>=|<|>|\bin\b)\s*(.+?)\s*$")


class Condition(BaseModel):
    """`KEY OP VALUE [and ...]`, parsed; `holds(values)` evaluates it."""

    model_config = ConfigDict(frozen=True)
    text: str
    clauses: list[tuple[str, str, Any]]

    @property
    def keys(self) -> list[str]:
        return [key for key, _, _ in self.clauses]

    def holds(self, values: dict[str, Any]) -> bool:
        for key, op, literal in self.clauses:
            if key not in values:
                return False
            try:
                if not _OPS[op](values[key], literal):
                    return False
            except TypeError:
                return False
        return True


def parse_condition(text: str) -> Condition:
    """Parse a condition; raises ValueError saying what is wrong."""
    clauses = []
    for part in re.split(r"\s+and\s+", text.strip()):
        match = _CLAUSE.match(part)
        if not match:
            raise ValueError(
                f"cannot read condition '{text}': expected KEY OP VALUE (OP: == != < <= > >= in)"
            )
        key, op, literal = match.groups()
        try:
            value = toml.parse_literal(literal)
        except toml.TOMLDecodeError as exc:
            raise ValueError(f"condition '{text}': '{literal}' is not a TOML value") from exc
        clauses.append((key, op, value))
    return Condition(text=text, clauses=clauses)


# ---------------------------------------------------------------------------------------------
# The validated space


class Parameter(BaseModel):
    """One searched recipe key: categorical `choices`, or an int/float range."""

    model_config = ConfigDict(frozen=True)
    key: str
    kind: Literal["categorical", "int", "float"]
    choices: list[Any] | None = None
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    log: bool = False
    condition: Condition | None = None

    def grid_values(self) -> list[Any]:
        """Every value of a grid over this parameter (ranges need a step, or are ints)."""
        if self.kind == "categorical":
            return list(self.choices or [])
        assert self.low is not None and self.high is not None
        if self.kind == "int":
            step = int(self.step or 1)
            return list(range(int(self.low), int(self.high) + 1, step))
        if self.step is None:
            raise ValueError("a float range needs a step for the grid sampler (or use a list)")
        count = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        return [round(self.low + i * self.step, 12) for i in range(count)]

    def representative_values(self) -> list[Any]:
        """Values applied to the recipe at load time to check the key accepts them."""
        if self.kind == "categorical":
            return list(self.choices or [])
        return [self.low, self.high]

    def distribution(self) -> Any:
        """The Optuna distribution (imported lazily)."""
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        if self.kind == "categorical":
            return CategoricalDistribution([_to_optuna(c) for c in self.choices or []])
        if self.kind == "int":
            return IntDistribution(
                int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        return FloatDistribution(float(self.low), float(self.high), step=self.step, log=self.log)


def _to_optuna(value: Any) -> Any:
    """Optuna's categorical choices must be None/bool/int/float/str: lists and tables travel
    as their JSON text (turned back by `from_optuna`)."""
    if isinstance(value, list | dict):
        return json.dumps(value, sort_keys=True)
    return value


def from_optuna(param: Parameter, value: Any) -> Any:
    """The recipe value of an Optuna-sampled value (`_to_optuna` reversed)."""
    if param.kind == "categorical" and isinstance(value, str):
        for choice in param.choices or []:
            if isinstance(choice, list | dict) and json.dumps(choice, sort_keys=True) == value:
                return choice
    return value


class TuneSpace(BaseModel):
    """The validated `[tune]` section: settings, parameters in declaration order, and the
    section-level conditions."""

    model_config = ConfigDict(frozen=True)
    config: TuneConfig
    parameters: list[Parameter]
    section_conditions: dict[str, Condition] = Field(default_factory=dict)

    def active_sections_removed(self, params: dict[str, Any], base: dict[str, Any]) -> list[str]:
        """Sections whose condition fails for these params (removed from the trial's recipe)."""
        values = {**base, **params}
        return [s for s, cond in self.section_conditions.items() if not cond.holds(values)]

    def grid(self) -> dict[str, list[Any]]:
        """Optuna GridSampler's search space (values as Optuna sees them)."""
        out = {}
        for p in self.parameters:
            out[p.key] = [_to_optuna(v) for v in p.grid_values()]
        return out

    def grid_size(self) -> int:
        return math.prod(len(v) for v in self.grid().values()) if self.parameters else 1


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, full + "."))
        out[full] = value
    return out


def _parameter(key: str, spec: Any, conditions: dict[str, Condition]) -> Parameter:
    from nnship.core.errors import RecipeError

    where = f"[tune.space] '{key}'"
    when: Condition | None = None
    if isinstance(spec, list):
        if not spec:
            raise RecipeError(f"{where}: empty list of values")
        param = Parameter(key=key, kind="categorical", choices=spec)
    elif isinstance(spec, ChoiceSpec):
        if not spec.choices:
            raise RecipeError(f"{where}: empty list of choices")
        param = Parameter(key=key, kind="categorical", choices=spec.choices)
        when = _parse(spec.when, where)
    else:
        kind = "int" if spec.is_int else "float"
        param = Parameter(
            key=key, kind=kind, low=spec.low, high=spec.high, step=spec.step, log=spec.log
        )
        when = _parse(spec.when, where)
    if when is None:
        for pattern, cond in conditions.items():
            if "." in pattern and fnmatch.fnmatchcase(key, pattern):
                when = cond
                break
    return param.model_copy(update={"condition": when}) if when else param


def _parse(text: str | None, where: str) -> Condition | None:
    from nnship.core.errors import RecipeError

    if text is None:
        return None
    try:
        return parse_condition(text)
    except ValueError as exc:
        raise RecipeError(f"{where}: {exc}") from exc


def validate_space(recipe: Any) -> TuneSpace:
    """Check `recipe.tune` against the recipe schema and return the validated space.

    Each key gets each representative value (every choice; a range's low and high) applied
    as an override, and the recipe is validated again, so an unknown key, a value of the wrong
    type or out of the key's bounds is a `RecipeError` naming the key, before any trial.
    Constraints on accuracy need labels: checked by the engine when it opens the data.
    """
    from nnship.core.errors import RecipeError
    from nnship.recipe import apply_overrides

    name = str(recipe.path) if getattr(recipe, "path", None) else "recipe"
    config: TuneConfig | None = getattr(recipe, "tune", None)
    if config is None:
        raise RecipeError(f"{name}: no [tune] section: add [tune] and [tune.space] to tune")
    if not config.space:
        raise RecipeError(f"{name}: [tune.space] is empty: declare at least one key to search")
    conditions: dict[str, Condition] = {}
    for pattern, text in config.conditions.items():
        conditions[pattern] = _parse(text, f"[tune.conditions] '{pattern}'")  # type: ignore[assignment]
    base = recipe.model_dump(mode="json", by_alias=True, exclude={"tune"})
    sections = {k for k, v in base.items() if isinstance(v, dict) or v is None}
    section_conditions = {}
    for pattern, cond in conditions.items():
        if "." not in pattern and "*" not in pattern:
            if pattern not in sections:
                raise RecipeError(f"{name}: [tune.conditions] '{pattern}' is not a recipe section")
            section_conditions[pattern] = cond
    parameters: list[Parameter] = []
    declared: set[str] = set()
    for key, spec in config.space.items():
        param = _parameter(key, spec, conditions)
        for ref in param.condition.keys if param.condition else []:
            if ref in config.space and ref not in declared:
                raise RecipeError(
                    f"{name}: [tune.space] '{key}': its condition reads '{ref}', declared after "
                    "it; declare the keys a condition reads first"
                )
        if key.split(".")[0] == "tune":
            raise RecipeError(
                f"{name}: [tune.space] '{key}': the [tune] section cannot be searched"
            )
        for value in param.representative_values():
            try:
                apply_overrides(recipe, {key: value})
            except RecipeError as exc:
                detail = str(exc).split(": ", 1)[-1]
                raise RecipeError(
                    f"{name}: [tune.space] '{key}' = {json.dumps(value)}: {detail}"
                ) from exc
        if key not in _flatten(
            apply_overrides(recipe, {key: param.representative_values()[0]}).model_dump(
                mode="json", by_alias=True
            )
        ):
            raise RecipeError(f"{name}: [tune.space] '{key}' is not a recipe key")
        parameters.append(param)
        declared.add(key)
    if config.sampler == "grid":
        for param in parameters:
            try:
                param.grid_values()
            except ValueError as exc:
                raise RecipeError(f"{name}: [tune.space] '{param.key}': {exc}") from exc
    return TuneSpace(config=config, parameters=parameters, section_conditions=section_conditions)


def space_hash(space: TuneSpace) -> str:
    """A short hash of what decides which trials a study proposes (the space, the conditions,
    the sampler, the seed, objectives and constraints)."""
    data = space.config.model_dump(mode="json", exclude={"trials", "timeout_s"})
    return stable_hash(data, 16)
