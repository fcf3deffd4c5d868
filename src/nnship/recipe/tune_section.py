"""The recipe's `[tune]` section and its search space `[tune.space]`.

```toml
[tune]
objectives = ["latency", "size"]          # minimised
constraints = { max_top1_drop = 1.0 }     # any validate gate; hard constraints
sampler = "tpe"                           # tpe | random | grid | nsga2
trials = 40
seed = 0

[tune.space]
"prune.ratio" = [0.0, 0.25, 0.5]                                   # categorical
"distill.epochs" = { low = 2, high = 12, step = 2, when = "prune.ratio > 0" }   # int range
"distill.lr" = { low = 1e-4, high = 3e-3, log = true }             # float range, log scale
"quantize.method" = { choices = ["entropy", "mse"] }               # categorical as a table

[tune.conditions]                         # glob of keys (or a section) -> condition
"distill.*" = "prune.ratio > 0"
"distill" = "prune.ratio > 0"             # a bare section name: the section itself is dropped
```

The conditions' grammar and the checks of the space are `nnship.tune.space`'s; this module
imports neither torch nor optuna (the recipe imports it).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Objective = Literal["latency", "size"]
SamplerName = Literal["tpe", "random", "grid", "nsga2"]

CONSTRAINT_GATES = (
    "max_top1_drop",
    "min_top1_agreement",
    "min_top5_agreement",
    "min_cosine",
    "min_sqnr_db",
    "max_abs_error",
    "max_latency_ms",
    "max_size_mb",
)
"""The validate gates (`[validate.gates]`) a tune constraint may name."""


class RangeSpec(BaseModel):
    """`{low, high[, step][, log]}`: an int range when low, high (and step) are ints, else a
    float range. `when` makes it conditional."""

    model_config = ConfigDict(extra="forbid")
    low: int | float
    high: int | float
    step: int | float | None = None
    log: bool = False
    when: str | None = None

    @model_validator(mode="after")
    def _check(self) -> RangeSpec:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) > high ({self.high})")
        if self.step is not None and self.step <= 0:
            raise ValueError(f"step must be > 0, got {self.step}")
        if self.log and self.low <= 0:
            raise ValueError(f"log = true needs low > 0, got {self.low}")
        if self.log and self.step is not None:
            raise ValueError("log and step cannot be combined (Optuna's rule)")
        return self

    @property
    def is_int(self) -> bool:
        values = [self.low, self.high] + ([self.step] if self.step is not None else [])
        return all(isinstance(v, int) and not isinstance(v, bool) for v in values)


class ChoiceSpec(BaseModel):
    """`{choices = [...]}`: categorical, as a table so it can carry `when`."""

    model_config = ConfigDict(extra="forbid")
    choices: list[Any]
    when: str | None = None


class TuneConfig(BaseModel):
    """The `[tune]` recipe section (`nnship build` ignores it).

    - `objectives`: minimised, of the best feasible artifact of a trial: "latency" (p50 ms,
      measured on the worker that ran the trial) and/or "size" (bytes on disk). Default both.
    - `constraints`: validate gates (`max_top1_drop`, `min_cosine`, `min_top1_agreement`, ...,
      units as in `[validate.gates]`); an artifact that misses one is infeasible. Default none.
    - `sampler`: "tpe" (default, Bayesian), "random", "grid" (every point of the space once),
      "nsga2" (genetic, several objectives).
    - `trials`: how many trials (default 20; grid: every point unless set lower).
    - `timeout_s`: wall-time budget in seconds (None: no limit).
    - `seed`: the sampler's seed (default: the recipe's `seed`); same seed, same trials.
    - `patience` / `margin`: early stop of hopeless distillations: after epoch `patience`
      (default 2), a distillation whose validation accuracy misses the accuracy budget by more
      than `margin` percentage points (default 5) is stopped and the trial recorded as pruned.
    - `space`: recipe key -> list (categorical), `{low, high, step, log}` range or
      `{choices}`; `conditions`: key glob or section -> condition (see the module doc).
    """

    model_config = ConfigDict(extra="forbid")

    objectives: list[Objective] = Field(default_factory=lambda: ["latency", "size"], min_length=1)
    constraints: dict[str, float] = Field(default_factory=dict)
    sampler: SamplerName = "tpe"
    trials: int | None = Field(default=None, ge=1)
    timeout_s: float | None = Field(default=None, gt=0)
    seed: int | None = None
    patience: int = Field(default=2, ge=1)
    margin: float = Field(default=5.0, ge=0)
    space: dict[str, list[Any] | RangeSpec | ChoiceSpec] = Field(default_factory=dict)
    conditions: dict[str, str] = Field(default_factory=dict)

    @field_validator("objectives")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"an objective is listed twice: {value}")
        return value

    @field_validator("constraints")
    @classmethod
    def _known_gates(cls, value: dict[str, float]) -> dict[str, float]:
        for name in value:
            if name not in CONSTRAINT_GATES:
                raise ValueError(
                    f"'{name}' is not a validate gate; constraints take {', '.join(CONSTRAINT_GATES)}"
                )
        from nnship.validate.config import Gates

        Gates(**value)  # the gate's own bounds (min_cosine <= 1, ...)
        return value
