"""What the tune API functions return (each has `to_dict()`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnship.tune.records import ParetoFile, TrialRecord

__all__ = ["PromotedRecipe", "TuneResult", "TuneSummary"]


@dataclass
class TuneResult:
    """What `api.tune` did: the tune folder, the study, every finished trial in the folder
    (`records`, this call's and earlier ones'), the trials this call ran, and the fronts."""

    tune_dir: Path
    study: str
    storage: str
    records: list[TrialRecord]
    ran: list[int]
    """Numbers of the trials this call ran."""
    pareto: ParetoFile
    pareto_path: Path
    stopped_by: str = "trials"
    """"trials" (the budget), "timeout" or "grid exhausted"."""
    resumed_interrupted: list[int] = field(default_factory=list)
    """Trials found interrupted (RUNNING, worker gone), failed and re-queued by this call."""

    @property
    def feasible(self) -> bool:
        """True when at least one artifact met every constraint."""
        return bool(self.pareto.groups)

    @property
    def exit_code(self) -> int:
        """0 when a feasible point was found, 1 when none met the constraints."""
        return 0 if self.feasible else 1

    def to_dict(self) -> dict[str, Any]:
        states: dict[str, int] = {}
        for r in self.records:
            states[r.state] = states.get(r.state, 0) + 1
        return {
            "tune_dir": str(self.tune_dir),
            "study": self.study,
            "storage": self.storage,
            "trials": states,
            "ran": list(self.ran),
            "stopped_by": self.stopped_by,
            "resumed_interrupted": list(self.resumed_interrupted),
            "pareto_path": str(self.pareto_path),
            "pareto": self.pareto.model_dump(mode="json"),
            "exit_code": self.exit_code,
        }


@dataclass
class TuneSummary:
    """What `api.tune_show` read: the fronts, the trials, and whether machines differ."""

    tune_dir: Path
    pareto: ParetoFile
    records: list[TrialRecord]
    html_path: Path | None = None

    @property
    def mixed_machines(self) -> bool:
        return len(self.pareto.fingerprints) > 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "tune_dir": str(self.tune_dir),
            "pareto": self.pareto.model_dump(mode="json"),
            "trials": len(self.records),
            "mixed_machines": self.mixed_machines,
            "html_path": str(self.html_path) if self.html_path else None,
        }


@dataclass
class PromotedRecipe:
    """What `api.tune_promote` wrote: a plain recipe reproducing one trial's build."""

    path: Path
    trial: int
    params: dict[str, Any]
    artifacts: dict[str, str]
    """Artifact label -> SHA-256 of the trial's artifact (a build of `path` gives the same)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "trial": self.trial,
            "params": dict(self.params),
            "artifacts": dict(self.artifacts),
        }
