"""What every stage of a build is given: the recipe, the build folder, the stage cache, and the
two things stages report back besides their results (stage states and notes for the report)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

from nnship.core import DataSource
from nnship.recipe import Recipe
from nnship.stages.cache import Restore, ResultT, StageCache, StageStamp

log = logging.getLogger("nnship.pipeline")


@dataclass
class StageContext:
    """One build of one recipe into `out`, shared by its stages.

    Stages read `recipe`, write under `out`, look their results up with `stamp()` and report
    their state with `mark()` ("ran", "reused", "skipped") and anything the reader of the
    report should know with `note()`. Stages return their results; they set nothing here.
    """

    recipe: Recipe
    out: Path
    cache: StageCache
    reuse: bool = True
    stages: dict[str, str] = field(default_factory=dict)
    """Stage name -> state, in the order the stages ran."""
    notes: list[str] = field(default_factory=list)
    """Build-level notes, copied into the report."""
    on_distill_epoch: Callable[..., None] | None = None
    """Called by distillation after each epoch (`nnship.compress.distill`'s `on_epoch`); the
    tuner raises from it to stop a hopeless trial."""
    baseline_cache: bool = False
    """Reuse the float baseline's evaluation outputs from the stage cache (the tuner's trials
    share one baseline; the baseline row then has no latency of its own)."""

    @property
    def name(self) -> str:
        """How messages name the recipe: its file, else "recipe"."""
        return str(self.recipe.path) if self.recipe.path else "recipe"

    @overload
    def stamp(
        self, stage_dir: Path, name: str, inputs: dict[str, Any]
    ) -> tuple[StageStamp, dict[str, Any] | None]: ...

    @overload
    def stamp(
        self, stage_dir: Path, name: str, inputs: dict[str, Any], restore: Restore[ResultT]
    ) -> tuple[StageStamp, ResultT | None]: ...

    def stamp(
        self,
        stage_dir: Path,
        name: str,
        inputs: dict[str, Any],
        restore: Restore[Any] | None = None,
    ) -> tuple[StageStamp, Any]:
        """The stage's cache stamp and, when reuse is on and a finished run with the same
        inputs exists, its stored result restored by `restore` (the result type's
        `from_dict`), its files already in place under `stage_dir`. A stage records its typed
        result with `stamp.record(outputs, result)`. (Without `restore`: the stored dict, for
        the compress schedule, which restores a phase's summary around the module it loads.)"""
        stage_dir.mkdir(parents=True, exist_ok=True)
        stamp = StageStamp(self.cache, self.out, stage_dir, name, inputs)
        if not self.reuse:
            return stamp, None
        return stamp, (stamp.lookup() if restore is None else stamp.lookup(restore))

    def mark(self, stage: str, state: str) -> None:
        """Record a stage's state ("ran", "reused", "skipped", ...) for `BuildResult.stages`."""
        self.stages[stage] = state
        log.info("%-12s %s", stage, state)

    def note(self, text: str) -> None:
        """A sentence for the report's notes."""
        self.notes.append(text)

    @staticmethod
    def data_key(data: DataSource | None) -> str | None:
        """The fingerprint of a data source (part of a stage's inputs), None for no data."""
        return None if data is None else data.fingerprint()
