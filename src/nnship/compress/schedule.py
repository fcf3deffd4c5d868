"""`compress()`: the one implementation of prune -> distill, in `PruneConfig.steps` steps.

`nnship prune`, `nnship distill` and `nnship build` all run it. Small steps with distillation
in between reach high ratios without the accuracy collapse of one large cut (Zhu & Gupta 2017,
"To prune, or not to prune"). The schedule is a list of phases (`Phase`: prune or distill, of
step k of N), each a separate run of `prune()` or `distill()`; a `PhaseStore` (the build's
stage cache) can hand back finished phases and keep new ones.

The steps are nnship's rather than Torch-Pruning's `iterative_steps`: Torch-Pruning keeps its
schedule in one pruner object (its graph of the model and the initial channel counts of every
layer), which a phase restored from a saved `.pt2` cannot continue.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from torch import nn

from nnship.compress.config import DistillConfig, PruneConfig
from nnship.compress.distill import DistillResult, EpochStats, distill
from nnship.compress.prune import GroupChange, PruneResult, prune
from nnship.compress.trace import ExampleInputs
from nnship.core import DataSource
from nnship.core.errors import CompressionError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Phase:
    """One run of the schedule: step `step` (1-based) of `steps` prunes or distills with
    `config` (a prune step's config holds that step's own ratio)."""

    kind: Literal["prune", "distill"]
    step: int
    steps: int
    config: PruneConfig | DistillConfig
    keep_zeros: bool = False
    """Distillation only: keep weights that are exactly zero at zero (after unstructured or
    2:4 pruning)."""

    @property
    def name(self) -> str:
        """The phase's name: `prune` / `distill` in a one-step schedule, else `prune 2/3` ..."""
        return self.kind if self.steps == 1 else f"{self.kind} {self.step}/{self.steps}"


class PhaseStore(Protocol):
    """Where `compress()` finds finished phases and keeps the ones it runs (the build's stage
    cache). `compress()` calls `lookup` for every phase, in order, before it runs any; then,
    phase by phase, `load` for each one it reuses and `keep` for each one it runs."""

    def lookup(self, phase: Phase) -> dict[str, Any] | None:
        """The summary (`to_dict()`) of a finished run of `phase` after the phases looked up
        before it, or None."""
        ...

    def load(self, phase: Phase) -> nn.Module:
        """The module a looked-up `phase` produced."""
        ...

    def keep(self, phase: Phase, module: nn.Module, summary: dict[str, Any]) -> None:
        """Record a finished run of `phase`: the module it produced and its summary."""
        ...


def step_ratio(final: float, step: int, steps: int, *, structured: bool) -> float:
    """The ratio to apply at `step` (1-based) of `steps` so the cumulative ratio grows linearly
    to `final`. Structured steps prune the already-smaller model (relative ratio); magnitude
    steps re-rank all weights, zeros included (absolute ratio)."""
    done, target = final * (step - 1) / steps, final * step / steps
    if not structured:
        return target
    return 1.0 - (1.0 - target) / (1.0 - done)


def step_config(config: PruneConfig, step: int, steps: int) -> PruneConfig:
    """The `PruneConfig` of `step` of `steps` (`config` itself for a one-step schedule)."""
    if steps == 1:
        return config
    structured = config.method == "structured"
    ratios = {
        k: step_ratio(v, step, steps, structured=structured) for k, v in config.layer_ratios.items()
    }
    ratio = step_ratio(config.ratio, step, steps, structured=structured)
    return config.model_copy(update={"ratio": ratio, "layer_ratios": ratios, "steps": 1})


def plan_phases(
    prune_config: PruneConfig | None,
    distill_config: DistillConfig | None,
    *,
    keep_zeros: bool | None = None,
) -> list[Phase]:
    """The phases `compress()` runs, in order: per step, prune then distill (either may be
    absent). A 2:4 pattern is complete after one step. `keep_zeros` None: on after
    unstructured or 2:4 pruning."""
    steps = 1
    if prune_config is not None and prune_config.method != "2:4":
        steps = prune_config.steps
    if keep_zeros is None:
        keep_zeros = prune_config is not None and prune_config.method != "structured"
    phases = []
    for step in range(1, steps + 1):
        if prune_config is not None:
            phases.append(Phase("prune", step, steps, step_config(prune_config, step, steps)))
        if distill_config is not None:
            phases.append(Phase("distill", step, steps, distill_config, keep_zeros))
    return phases


def _reusable(phases: list[Phase], found: list[dict[str, Any] | None]) -> int:
    """How many leading phases to take from the store: all of them when all are stored; all
    but a last distillation (it trains the stored pruned module, as a build always did);
    otherwise none, since a stored module (an exported program) cannot be pruned again and
    a later prune phase needs the module in memory."""
    stored = next((i for i, summary in enumerate(found) if summary is None), len(found))
    if all(phase.kind == "distill" for phase in phases[stored:]):
        return stored
    return 0


@dataclass(frozen=True)
class CompressResult:
    """The final module and what every step did (`prune_steps[k]`, `distill_steps[k]`: step
    k + 1); `reused` names the phases taken from a `PhaseStore`."""

    module: nn.Module
    prune_config: PruneConfig | None = None
    prune_steps: tuple[PruneResult, ...] = ()
    distill_steps: tuple[DistillResult, ...] = ()
    reused: tuple[str, ...] = ()

    @property
    def steps(self) -> int:
        return max(len(self.prune_steps), len(self.distill_steps))

    @property
    def param_ratio(self) -> float:
        """Parameters of the final model / of the original (1.0 without pruning)."""
        pruned = self.pruned()
        return 1.0 if pruned is None else pruned.param_ratio

    @property
    def flops_ratio(self) -> float:
        """FLOPs of the final model / of the original (1.0 without pruning)."""
        pruned = self.pruned()
        return 1.0 if pruned is None else pruned.flops_ratio

    def pruned(self) -> PruneResult | None:
        """Pruning as a whole: the last step's result measured against the original model
        (its "before" counts and channels are the first step's) under the schedule's
        `prune_config`; the step's own result for a one-step schedule; None without pruning."""
        if not self.prune_steps:
            return None
        first, last = self.prune_steps[0], self.prune_steps[-1]
        if len(self.prune_steps) == 1:
            return last
        before = {g.name: g.channels_before for g in first.groups}
        return dataclasses.replace(
            last,
            config=self.prune_config or last.config,
            params_before=first.params_before,
            nonzero_before=first.nonzero_before,
            flops_before=first.flops_before,
            groups=[
                GroupChange(
                    g.name,
                    g.producers,
                    before.get(g.name, g.channels_before),
                    g.channels_after,
                )
                for g in last.groups
            ],
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (without the modules)."""
        return {
            "prune_config": None if self.prune_config is None else self.prune_config.model_dump(),
            "param_ratio": self.param_ratio,
            "flops_ratio": self.flops_ratio,
            "prune_steps": [p.to_dict() for p in self.prune_steps],
            "distill_steps": [d.to_dict() for d in self.distill_steps],
            "reused": list(self.reused),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], module: nn.Module) -> CompressResult:
        """The result `to_dict()` summarised, around the final `module`. A summary keeps no
        intermediate models: every step's result refers to `module`."""
        config = data.get("prune_config")
        return cls(
            module=module,
            prune_config=None if config is None else PruneConfig.model_validate(config),
            prune_steps=tuple(PruneResult.from_dict(p, module) for p in data["prune_steps"]),
            distill_steps=tuple(DistillResult.from_dict(d, module) for d in data["distill_steps"]),
            reused=tuple(data.get("reused", [])),
        )


def compress(
    module: nn.Module,
    example_inputs: ExampleInputs,
    prune_config: PruneConfig | None,
    distill_config: DistillConfig | None = None,
    *,
    data: DataSource | None = None,
    val_data: DataSource | None = None,
    student: nn.Module | None = None,
    keep_zeros: bool | None = None,
    on_epoch: Callable[[EpochStats, DistillResult], None] | None = None,
    store: PhaseStore | None = None,
) -> CompressResult:
    """Prune `module` in `prune_config.steps` steps, distilling from `module` (the teacher)
    after each step when `distill_config` is given; or, without `prune_config`, distill
    `student` (default: a copy of `module`) from `module`. `module` is not modified.

    `data` feeds Taylor importance, BatchNorm recalibration and distillation (labels optional);
    it is required when distilling. Taylor importance after the first step, on unlabelled
    data, follows the teacher's outputs. `val_data`, `keep_zeros` (None: on after
    unstructured or 2:4 pruning) and `on_epoch` go to every `distill()`. `store` hands back
    finished phases and keeps new ones (see `PhaseStore`).
    Raises `CompressionError` without anything to do, without data to distill on, or with
    both a student and a prune config.
    """
    if prune_config is None and distill_config is None:
        raise CompressionError("Nothing to compress: give a prune config, a distill config or both")
    if distill_config is not None and data is None:
        raise CompressionError("Distillation needs data: give [data] calibration or --data")
    if student is not None and prune_config is not None:
        raise CompressionError("Give a student to distill or a prune config, not both")
    phases = plan_phases(prune_config, distill_config, keep_zeros=keep_zeros)
    found = [store.lookup(p) for p in phases] if store is not None else [None] * len(phases)
    reuse = _reusable(phases, found)
    teacher = module.eval()
    current = student
    prune_steps: list[PruneResult] = []
    distill_steps: list[DistillResult] = []
    for index, phase in enumerate(phases):
        summary = found[index]
        if index < reuse and store is not None and summary is not None:
            current = store.load(phase)
            if phase.kind == "prune":
                prune_steps.append(PruneResult.from_dict(summary, current))
            else:
                distill_steps.append(DistillResult.from_dict(summary, current))
            continue
        if isinstance(phase.config, PruneConfig):
            log.info("%s (ratio %.3f)", phase.name, phase.config.ratio)
            pruned = prune(
                teacher if current is None else current,
                example_inputs,
                phase.config,
                data=data,
                # Taylor on unlabelled data follows the teacher once the model differs from
                # it; on the teacher itself that gradient is zero (its own top-1 is used)
                teacher=None if current is None else teacher,
            )
            current, result = pruned.module, pruned.to_dict()
            prune_steps.append(pruned)
        else:
            assert data is not None
            log.info("%s", phase.name)
            distilled = distill(
                teacher,
                copy.deepcopy(teacher) if current is None else current,
                data,
                phase.config,
                val_data=val_data,
                keep_zeros=phase.keep_zeros,
                on_epoch=on_epoch,
            )
            current, result = distilled.student, distilled.to_dict()
            distill_steps.append(distilled)
        if store is not None:
            store.keep(phase, current, result)
    assert current is not None
    return CompressResult(
        module=current.eval(),
        prune_config=prune_config,
        prune_steps=tuple(prune_steps),
        distill_steps=tuple(distill_steps),
        reused=tuple(p.name for p in phases[:reuse]),
    )
